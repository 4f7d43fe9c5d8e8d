"""Parameter-efficient fine-tuning: LoRA adapters (``lora.py``) and their use on models
(``model.py``: apply, freeze, merge, save / load, several named adapters on one base), with
whole modules trained and saved beside them, such as a classifier's new head (``saved.py``), and
a few trainable rows of a frozen embedding, such as new chat tokens (``tokens.py``)."""

from .lora import LoRALinear
from .model import (
    BERT_ATTENTION,
    GPT_ATTENTION,
    adapter_names,
    apply_lora,
    load_adapter,
    lora_layers,
    mark_only_lora_as_trainable,
    merge_adapter,
    merge_and_unload,
    read_adapter_config,
    save_adapter,
    set_adapter,
    trainable_parameters,
    unmerge_adapter,
)
from .saved import adapter_labels, set_labels, task_head
from .tokens import TrainableTokens

__all__ = [
    "BERT_ATTENTION",
    "GPT_ATTENTION",
    "LoRALinear",
    "TrainableTokens",
    "adapter_labels",
    "adapter_names",
    "apply_lora",
    "load_adapter",
    "lora_layers",
    "mark_only_lora_as_trainable",
    "merge_adapter",
    "merge_and_unload",
    "read_adapter_config",
    "save_adapter",
    "set_adapter",
    "set_labels",
    "task_head",
    "trainable_parameters",
    "unmerge_adapter",
]
