from .configuration_srcnn import SRCNNConfig
from .modeling_srcnn import SRCNN
from .convert_srcnn import SRCNNConversion

__all__ = ["SRCNNConversion", "SRCNNConfig", "SRCNN"]
