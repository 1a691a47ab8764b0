from .configuration_edsr import EDSRConfig
from .modeling_edsr import EDSR
from .convert_edsr import EDSRConversion

__all__ = ["EDSRConversion", "EDSRConfig", "EDSR"]
