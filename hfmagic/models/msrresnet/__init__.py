from .configuration_msrresnet import MSRResNetConfig
from .modeling_msrresnet import MSRResNet

__all__ = ["MSRResNetConfig", "MSRResNet"]
