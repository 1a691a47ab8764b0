"""Data for hfmagic: MATLAB-exact bicubic resizing, paired super-resolution datasets built on HF
``datasets``, DIV2K preparation and the standard evaluation sets.

``hfmagic.data`` imports torch and numpy only; ``datasets`` is imported when a dataset is built.
"""

from .gan_dataset import GANImageDataset, GANImageIterableDataset, build_gan_dataset, collate_gan_batch, preprocess_gan_image  # noqa: F401
from .images import load_rgb, to_numpy, to_tensor
from .imresize import imresize

__all__ = ["imresize", "load_rgb", "to_tensor", "to_numpy"]
