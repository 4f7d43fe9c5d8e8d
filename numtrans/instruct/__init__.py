"""From a pretrained GPT to an instruction-following model: the chat template (``template.py``)."""

from .template import CHAT_TOKENS, add_chat_tokens, apply_chat_template

__all__ = ["CHAT_TOKENS", "add_chat_tokens", "apply_chat_template"]
