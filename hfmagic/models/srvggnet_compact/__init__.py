from .configuration_srvggnet_compact import SRVGGNetCompactConfig
from .modeling_srvggnet_compact import SRVGGNetCompact
from .convert_srvggnet_compact import SRVGGNetCompactConversion

__all__ = ["SRVGGNetCompactConversion", "SRVGGNetCompactConfig", "SRVGGNetCompact"]
