from .configuration_srcnn import SRCNNConfig
from .modeling_srcnn import SRCNN

__all__ = ["SRCNNConfig", "SRCNN"]
