from .configuration_dcgan import DCGANConfig
from .modeling_dcgan import DCGANDiscriminator, DCGANGenerator, DCGANPreTrainedModel
from .convert_dcgan import DCGANConversion

__all__ = ["DCGANConversion", "DCGANConfig", "DCGANGenerator", "DCGANDiscriminator", "DCGANPreTrainedModel"]
