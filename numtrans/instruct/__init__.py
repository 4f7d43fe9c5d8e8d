"""From a pretrained GPT to an instruction-following model.

* ``template.py``: the chat markers as single tokens, :func:`apply_chat_template`;
* ``sft.py``: assistant-only labels (``-100`` elsewhere), length-bucketed batches;
* ``tasks.py``: a multi-task instruction set from the bundled training splits.
DPO lives in :mod:`numtrans.finetune.dpo`; corpus cleaning in :mod:`numtrans.data.cleaning`.
"""

from .sft import IGNORE_INDEX, bucket_batches, sft_example
from .tasks import instruction_set
from .template import CHAT_TOKENS, add_chat_tokens, apply_chat_template

__all__ = [
    "CHAT_TOKENS",
    "IGNORE_INDEX",
    "add_chat_tokens",
    "apply_chat_template",
    "bucket_batches",
    "instruction_set",
    "sft_example",
]
