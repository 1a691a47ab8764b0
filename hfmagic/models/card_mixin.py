"""Model-card behaviour shared by every hfmagic ``PreTrainedModel`` base class."""

from __future__ import annotations

__all__ = ["ModelCardMixin"]


class ModelCardMixin:
    """``save_pretrained`` writes a model card and ``push_to_hub`` uploads it with the weights.

    Put it before ``PreTrainedModel`` in the bases. ``hfmagic.hub`` sits above the models in the
    package, so it is imported when these methods run, not when the models are imported.
    """

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
