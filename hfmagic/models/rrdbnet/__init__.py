from .configuration_rrdbnet import RRDBNetConfig
from .modeling_rrdbnet import RRDBNet
from .convert_rrdbnet import RRDBNetConversion

__all__ = ["RRDBNetConversion", "RRDBNetConfig", "RRDBNet"]
