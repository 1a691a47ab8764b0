from .configuration_dcgan import DCGANConfig
from .modeling_dcgan import DCGANDiscriminator, DCGANGenerator, DCGANPreTrainedModel

__all__ = ["DCGANConfig", "DCGANGenerator", "DCGANDiscriminator", "DCGANPreTrainedModel"]
