from .configuration_modified_vgg import ModifiedVGGConfig
from .modeling_modified_vgg import ModifiedVGGDiscriminator
from .convert_modified_vgg import ModifiedVGGConversion

__all__ = ["ModifiedVGGConversion", "ModifiedVGGConfig", "ModifiedVGGDiscriminator"]
