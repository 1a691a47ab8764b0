"""What every hfmagic super-resolution model shares: the config fields, the loss, the forward contract.

A new SR network is a subclass of ``SuperResolutionConfig`` (with its own ``model_type``) and
of ``SuperResolutionPreTrainedModel`` that implements ``reconstruct(pixel_values)`` (or the pair
``forward_features`` / ``forward_head``, which the pipeline can tile in two stages); it then
gets ``from_pretrained``/``push_to_hub``, the pipeline, the CLI and the training loop.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageSuperResolutionOutput

from ..layers import init_module
from ..losses.pixel import LOSSES, charbonnier_loss
from .card_mixin import ModelCardMixin
from .config_checks import check_int_fields

__all__ = ["SuperResolutionConfig", "SuperResolutionPreTrainedModel", "LOSSES", "charbonnier_loss"]


class SuperResolutionConfig(PretrainedConfig):
    r"""Base configuration of the super-resolution models (a transformers 5 dataclass config: a
    subclass declares its own fields as annotated class attributes, and validates in ``__post_init__``).

    Args:
        upscale_factor (`int`, *optional*, defaults to 4):
            How much the model enlarges its input; must be one of the class's `supported_upscale_factors`.
        in_channels (`int`, *optional*, defaults to 3):
            Channels of the input image.
        out_channels (`int`, *optional*, defaults to 3):
            Channels of the output image.
        loss_type (`str`, *optional*, defaults to `"l1"`):
            Pixel loss used when `labels` are passed to `forward`: `"l1"`, `"mse"` or `"charbonnier"`.
    """

    # Subclasses narrow this to what their upsampler supports (a class constant, not saved).
    supported_upscale_factors: ClassVar[tuple[int, ...]] = (1, 2, 3, 4, 8)
    # What model cards say: the Hub kind (hfmagic.hub._KINDS) and MMagic's module with the same
    # weights (subclasses that port one set it).
    hub_kind: ClassVar[str] = "super-resolution"
    mmagic_module: ClassVar[str | None] = None

    upscale_factor: int = 4
    in_channels: int = 3
    out_channels: int = 3
    loss_type: str = "l1"

    def __post_init__(self, **kwargs):
        check_int_fields(self)
        if self.upscale_factor not in self.supported_upscale_factors:
            raise ValueError(
                f"{type(self).__name__} does not support upscale_factor={self.upscale_factor!r}; "
                f"choose one of {list(self.supported_upscale_factors)}."
            )
        if self.loss_type not in LOSSES:
            raise ValueError(f"Unknown loss_type={self.loss_type!r}; choose one of {sorted(LOSSES)}.")
        super().__post_init__(**kwargs)


class SuperResolutionPreTrainedModel(ModelCardMixin, PreTrainedModel):
    """Base of the SR models: input/label checks, the pixel loss and ``ImageSuperResolutionOutput``.

    Subclasses build their layers in ``__init__`` (ending with ``self.post_init()``) and
    implement ``reconstruct``: (N, in_channels, H, W) in [0, 1] -> (N, out_channels, sH, sW), or
    ``forward_features`` (LR resolution) and ``forward_head`` (upsampling tail), which it composes.
    """

    config_class = SuperResolutionConfig
    base_model_prefix = "generator"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False
    _no_split_modules: list[str] = []

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        config_class = cls.__dict__.get("config_class")
        if config_class is not None and not issubclass(config_class, PretrainedConfig):
            raise TypeError(
                f"{cls.__name__}.config_class must be a PretrainedConfig subclass, got {config_class!r}."
            )

    def __init__(self, config: SuperResolutionConfig, *args, **kwargs):
        if type(self).config_class is SuperResolutionConfig and type(self) is not SuperResolutionPreTrainedModel:
            raise TypeError(
                f"{type(self).__name__} has no config_class of its own: add `config_class = YourConfig` "
                "(a SuperResolutionConfig subclass with its own model_type) to the class."
            )
        super().__init__(config, *args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        init_module(module)

    def reconstruct(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Upscale ``pixel_values`` (N, C, H, W) in [0, 1] to (N, C_out, sH, sW).

        Either override this, or split the network in two with ``forward_features`` (everything at
        the input's resolution) and ``forward_head`` (the upsampling tail); the default composes
        them. The split lets the pipeline tile large images in two stages (see
        :class:`hfmagic.SuperResolutionPipeline`).
        """
        if type(self).forward_features is SuperResolutionPreTrainedModel.forward_features:
            raise NotImplementedError(
                f"{type(self).__name__} must implement reconstruct(pixel_values) -> (N, out_channels, H*s, W*s), "
                "or forward_features(pixel_values) and forward_head(features, pixel_values)."
            )
        return self.forward_head(self.forward_features(pixel_values), pixel_values)

    def forward_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The part of the network at input resolution: (N, C, H, W) -> features (N, F, H, W)."""
        raise NotImplementedError(f"{type(self).__name__} does not split into forward_features / forward_head.")

    def forward_head(self, features: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """The upsampling tail: features (N, F, H, W) and the input (for skips) -> (N, C_out, sH, sW)."""
        raise NotImplementedError(f"{type(self).__name__} does not split into forward_features / forward_head.")

    def input_multiple(self) -> int:
        """What the input's height and width must be multiples of (1: any size). A model that
        pixel-unshuffles its input (RRDBNet x1/x2) returns the factor; the pipeline then pads images
        (reflect) to a multiple and crops the output, and starts every tile and halo at a multiple."""
        return 1

    def receptive_field(self) -> int | None:
        """LR pixels of context a tile needs on each side for tiled inference to equal a
        whole-image pass; None when unknown (the pipeline then measures it with a NaN probe).
        Architectures with a formula override it (see ``hfmagic.models.receptive_field``)."""
        return None

    def split_receptive_fields(self) -> tuple[int, int] | None:
        """For models split into ``forward_features`` / ``forward_head``: the context each stage
        needs, ``(features, head)`` in LR pixels; None when unknown (the pipeline probes it)."""
        return None

    def compute_loss(self, reconstruction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Pixel loss of the kind named by ``config.loss_type`` (mean over all elements)."""
        return LOSSES[self.config.loss_type](reconstruction, labels)

    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ImageSuperResolutionOutput | tuple:
        """Upscale a batch and, when ``labels`` (the HR images) are given, compute the pixel loss.

        Args:
            pixel_values: (N, in_channels, H, W), RGB float in [0, 1].
            labels: optional (N, out_channels, H*s, W*s) ground truth in [0, 1].
        Returns:
            ``ImageSuperResolutionOutput`` with ``reconstruction`` (N, out_channels, H*s, W*s)
            and ``loss`` when labels are given.
        """
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__} expects pixel_values as a torch.Tensor (N, {self.config.in_channels}, H, W), got "
                f"{type(pixel_values).__name__}: for PIL images, numpy arrays or images of different sizes use "
                "hfmagic.SuperResolutionPipeline (or call the model once per image)."
            )
        if not pixel_values.is_floating_point():
            raise TypeError(
                f"{type(self).__name__} expects float pixel_values in [0, 1], got {pixel_values.dtype}: "
                "convert uint8 images with images.float() / 255."
            )
        if pixel_values.dim() != 4 or pixel_values.shape[1] != self.config.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects pixel_values of shape (N, {self.config.in_channels}, H, W), "
                f"got {tuple(pixel_values.shape)}."
            )
        reconstruction = self.reconstruct(pixel_values)
        if not isinstance(reconstruction, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__}.reconstruct must return a tensor (N, C, H*s, W*s), "
                f"got {type(reconstruction).__name__}."
            )
        n, _, h, w = pixel_values.shape
        scale = self.config.upscale_factor
        expected = (n, self.config.out_channels, h * scale, w * scale)
        if tuple(reconstruction.shape) != expected:
            raise ValueError(
                f"{type(self).__name__}.reconstruct returned shape {tuple(reconstruction.shape)} for input "
                f"{tuple(pixel_values.shape)}; expected {expected} (out_channels={self.config.out_channels}, "
                f"upscale_factor={scale}). Check the upsampling layers against config.upscale_factor."
            )
        loss = None
        if labels is not None:
            if labels.shape != reconstruction.shape:
                scale = self.config.upscale_factor
                raise ValueError(
                    f"labels of shape {tuple(labels.shape)} do not match the x{scale} reconstruction "
                    f"{tuple(reconstruction.shape)} of input {tuple(pixel_values.shape)}: the data's scale "
                    f"must equal config.upscale_factor={scale}."
                )
            loss = self.compute_loss(reconstruction, labels)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if not return_dict:
            return (reconstruction,) if loss is None else (loss, reconstruction)
        return ImageSuperResolutionOutput(loss=loss, reconstruction=reconstruction)
