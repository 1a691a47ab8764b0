"""Behaviour shared by every hfmagic ``PreTrainedModel`` base class: model cards on save and push,
and non-persistent buffers restored on load."""

from __future__ import annotations

__all__ = ["ModelCardMixin", "restore_non_persistent_buffers"]


class ModelCardMixin:
    """``save_pretrained`` writes a model card and ``push_to_hub`` uploads it with the weights.

    Put it before ``PreTrainedModel`` in the bases. ``hfmagic.hub`` sits above the models in the
    package, so it is imported when these methods run, not when the models are imported.
    """

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """transformers' ``from_pretrained``, plus the model's non-persistent buffers (not in the
        weights file; transformers builds the model on the meta device, which loses the values
        ``__init__`` gave them) set again from a fresh instance (see ``restore_non_persistent_buffers``)."""
        if args and kwargs.get("config") is None:
            _check_saved_architecture(cls, args[0], kwargs)
        loaded = super().from_pretrained(*args, **kwargs)
        restore_non_persistent_buffers(loaded[0] if isinstance(loaded, tuple) else loaded, *args[1:])
        return loaded

    def save_pretrained(self, save_directory, *args, **kwargs):
        """transformers' ``save_pretrained``, plus a model card ``README.md`` when the folder has none
        (see ``hfmagic.hub``; a card already there is kept)."""
        from ..hub import save_pretrained_with_card

        save_pretrained_with_card(self, super().save_pretrained, save_directory, *args, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs):
        """Upload config, safetensors and the model card in one commit; ``kwargs`` as transformers'
        ``push_to_hub`` plus card fields (``metrics``, ``datasets``, ...; see ``hfmagic.hub.push_model_to_hub``)."""
        from ..hub import push_model_to_hub

        return push_model_to_hub(self, repo_id, **kwargs)


_CONFIG_KWARGS = ("cache_dir", "force_download", "proxies", "token", "revision", "subfolder", "local_files_only")


def _check_saved_architecture(cls, pretrained_model_name_or_path, kwargs: dict) -> None:
    """Refuse a folder saved by another hfmagic class (an EDSR folder into MSRResNet, a GAN's
    discriminator into DCGANGenerator): transformers would load it with random or mismatched weights.
    Classes related by inheritance, and names hfmagic does not know, are left to transformers."""
    from transformers import PretrainedConfig

    import hfmagic

    try:
        config, _ = PretrainedConfig.get_config_dict(
            pretrained_model_name_or_path, **{k: kwargs[k] for k in _CONFIG_KWARGS if k in kwargs}
        )
    except Exception:  # no config here: transformers' own loading reports it
        return
    for name in config.get("architectures") or []:
        saved = getattr(hfmagic, name, None)
        if not isinstance(saved, type) or issubclass(cls, saved) or issubclass(saved, cls):
            continue
        hint = ""
        # a GAN's config names its discriminator class (card_classes), whichever network was saved
        saved_config = getattr(saved, "config_class", None)
        discriminator = getattr(saved_config, "card_classes", {}).get("discriminator")
        if getattr(saved_config, "hub_kind", None) == "discriminator":  # a stand-alone one (SRGAN's, ...)
            discriminator = name
        if name == discriminator:
            hint = " A GAN repo holds the generator at its root and the discriminator under subfolder='discriminator'."
        elif cls.__name__ == discriminator or getattr(getattr(cls, "config_class", None), "hub_kind", None) == "discriminator":
            hint = f" A GAN repo's discriminator loads with {cls.__name__}.from_pretrained(path, subfolder='discriminator')."
        raise ValueError(
            f"{pretrained_model_name_or_path!s} was saved as {name} (config.json 'architectures'), not {cls.__name__}: "
            f"load it with {name}.from_pretrained(...), or with transformers' AutoModel.{hint}"
        )


def restore_non_persistent_buffers(model, *model_args) -> None:
    """Copy every non-persistent buffer of ``model`` from a fresh ``type(model)(model.config, *model_args)``
    built on the CPU: the values its ``__init__`` computes (a mean to subtract, a kernel), in the
    loaded model's dtype and device. Nothing is built when the model has no such buffer or its class
    refills them itself in ``_init_weights`` (``_init_weights_sets_buffers = True``, as EDSR).

    The reference runs its ordinary init (patching torch's init functions would be seen by every
    thread) with torch's CPU RNG forked, so loading a model leaves the caller's random stream as it was.
    """
    if getattr(type(model), "_init_weights_sets_buffers", False):
        return
    names = [
        f"{prefix}.{name}" if prefix else name
        for prefix, module in model.named_modules()
        for name in module._non_persistent_buffers_set
        if module._buffers.get(name) is not None
    ]
    if not names:
        return
    import logging

    import torch

    try:
        with torch.random.fork_rng(devices=[]):
            reference = type(model)(model.config, *model_args)
    except TypeError as err:  # an __init__ that needs more than from_pretrained's positional arguments
        logging.getLogger(__name__).warning(
            "%s's non-persistent buffers %s could not be rebuilt (%s): set them in _init_weights.", type(model).__name__, names, err
        )
        return
    with torch.no_grad():
        for name in names:
            model.get_buffer(name).copy_(reference.get_buffer(name))
