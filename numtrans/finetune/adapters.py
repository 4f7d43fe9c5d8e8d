"""LoRA fine-tuning of a classifier: the adapter directory, loading it onto its base, merging.

    numtrans finetune --model BASE --data rows.tsv --lora 8 --out ADAPTER
    numtrans evaluate --model BASE --adapter ADAPTER --data test.tsv
    numtrans merge-adapter --model BASE --adapter ADAPTER --out MERGED

``finetune`` with a rank trains only the low-rank pairs (``numtrans.peft``) and the new head,
which has no pretrained weights to adapt and so trains in full (``modules_to_save``). The
adapter directory holds

    adapter_model.safetensors   every layer's lora_A (r, in) and lora_B (out, r), the head
    adapter_config.json         r, alpha, the base's layer names and shapes (checked on load)
    labels.json                 task, class names, max_length, pooling: the head's settings

and no copy of the base: MiniLM-L6's adapter (r = 8 on q/k/v/out) is 0.6 MB beside a 90 MB base.
``merge-adapter`` folds W + (alpha / r) B A into each weight and writes a plain model directory,
which ``evaluate --model`` scores as the base + adapter scored.
"""

from __future__ import annotations

import os

from ..peft import (
    BERT_ATTENTION,
    GPT_ATTENTION,
    apply_lora,
    load_adapter,
    merge_and_unload,
    set_labels,
)
from ..peft.model import ADAPTER_CONFIG, save_adapter
from .data import LabelMap
from .models import body_and_head, classifier_from_pretrained, load_tokenizer


def default_targets(model) -> tuple[str, ...]:
    """Attention's projections: q/k/v/out for BERT, ``c_attn`` and its ``c_proj`` for GPT."""
    gpt = any(name.endswith("c_attn") for name, _ in model.named_modules())
    return GPT_ATTENTION if gpt else BERT_ATTENTION


def head_modules(model) -> tuple[str, ...]:
    """The new head's top-level module names (``classifier`` or ``score``)."""
    _, head = body_and_head(model)
    return tuple(sorted({name.split(".")[0] for name, _ in head}))


def add_lora(model, r: int, alpha: float, targets: str | None = None):
    """LoRA on ``targets`` (default: attention), the head trained in full; the rest frozen."""
    return apply_lora(model, r, alpha, targets or default_targets(model),
                      modules_to_save=head_modules(model))  # fmt: skip


def is_adapter_dir(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, ADAPTER_CONFIG))


def save_adapter_dir(out_dir: str, model, labels: LabelMap, base: str, **settings) -> None:
    """The adapter (no base weights) and ``labels.json`` with ``settings`` (max_length...)."""
    set_labels(model, labels.names)  # the head's class names travel in adapter_config.json too
    save_adapter(model, out_dir, base_model_name_or_path=base)
    labels.save(out_dir, **settings)


def load_with_adapter(base: str, adapter: str):
    """``(model, tokenizer, label_map, max_length)``: the base classifier with the adapter in
    ``adapter`` loaded (refused, in one line, when it was trained on another base)."""
    if not is_adapter_dir(adapter):
        raise ValueError(f"{adapter!r} is not an adapter directory (no {ADAPTER_CONFIG})")
    labels, extra = LabelMap.load(adapter)
    model = classifier_from_pretrained(base, labels.num_labels, extra.get("pooling", "mean"))
    load_adapter(model, adapter)
    model.eval()
    return model, load_tokenizer(base), labels, int(extra.get("max_length", 128))


def merge_adapter_dir(base: str, adapter: str, out_dir: str) -> None:
    """Base + adapter -> one plain model directory (weights, tokenizer, ``labels.json``)."""
    model, tokenizer, labels, max_length = load_with_adapter(base, adapter)
    merge_and_unload(model)
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    if hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(out_dir)
    else:
        tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    labels.save(out_dir, max_length=max_length)
