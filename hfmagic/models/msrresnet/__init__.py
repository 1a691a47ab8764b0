from .configuration_msrresnet import MSRResNetConfig
from .modeling_msrresnet import MSRResNet
from .convert_msrresnet import MSRResNetConversion

__all__ = ["MSRResNetConversion", "MSRResNetConfig", "MSRResNet"]
