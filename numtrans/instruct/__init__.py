"""From a pretrained GPT to an instruction-following model.

* ``template.py``: the chat markers as single tokens, :func:`apply_chat_template`;
* ``sft.py``: assistant-only labels (``-100`` elsewhere), length-bucketed batches;
* ``tasks.py``: a multi-task instruction set from the bundled training splits;
* ``train.py``: :func:`prepare_model` (chat tokens + embedding resize), :func:`train_sft`;
* ``pairs.py``: preference pairs from the SFT model's own samples, ranked by chrF;
* ``preference.py``: the DPO loop (frozen reference, reward margin/accuracy, implicit KL);
* ``chat.py``: :class:`ChatSession`, multi-turn generation with the KV cache kept across turns.
The DPO loss lives in :mod:`numtrans.finetune.dpo`; corpus cleaning in :mod:`numtrans.data.cleaning`.
"""

from .sft import IGNORE_INDEX, bucket_batches, sft_example
from .tasks import instruction_set
from .template import CHAT_TOKENS, add_chat_tokens, apply_chat_template
from .train import prepare_model, train_sft

__all__ = [
    "CHAT_TOKENS",
    "IGNORE_INDEX",
    "add_chat_tokens",
    "apply_chat_template",
    "bucket_batches",
    "instruction_set",
    "prepare_model",
    "sft_example",
    "train_sft",
]
