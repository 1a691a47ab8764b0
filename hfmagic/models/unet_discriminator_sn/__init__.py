from .configuration_unet_discriminator_sn import UNetDiscriminatorSNConfig
from .modeling_unet_discriminator_sn import UNetDiscriminatorSN
from .convert_unet_discriminator_sn import UNetDiscriminatorSNConversion

__all__ = ["UNetDiscriminatorSNConversion", "UNetDiscriminatorSNConfig", "UNetDiscriminatorSN"]
