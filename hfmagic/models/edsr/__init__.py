from .configuration_edsr import EDSRConfig
from .modeling_edsr import EDSR

__all__ = ["EDSRConfig", "EDSR"]
