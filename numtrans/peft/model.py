"""Putting LoRA adapters on a model, and saving / loading them alone.

    apply_lora(model, r=8, alpha=16, target_modules=("query", "key", "value", "attention.output.dense"))
    save_adapter(model, "adapter/")            # adapter_model.safetensors + adapter_config.json
    load_adapter(model, "adapter/", name="sentiment");  set_adapter(model, "sentiment")

A target pattern matches a ``Linear`` whose dotted name (``named_modules``) ends with it at a
dot boundary, as ``peft``'s ``target_modules`` does: ``"query"`` matches
``bert.encoder.layer.0.attention.self.query``. Patterns for BERT: ``query key value
attention.output.dense`` (attention), ``intermediate.dense output.dense`` (MLP); for GPT:
``c_attn attn.c_proj`` and ``mlp.c_fc mlp.c_proj``.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..io import atomic_write, atomic_write_text, read_json_object
from ..nn.linear import Linear
from .lora import LoRALinear

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
BERT_ATTENTION = ("query", "key", "value", "attention.output.dense")


def _matches(name: str, patterns) -> bool:
    return any(name == p or name.endswith("." + p) for p in patterns)


def _set_submodule(model, name: str, module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(_submodule(model, parent_name), child, module)


def _submodule(model, name: str):
    module = model
    for part in name.split(".") if name else ():
        module = getattr(module, part)
    return module


def lora_layers(model) -> dict:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def mark_only_lora_as_trainable(model) -> None:
    """Freeze everything but ``lora_A`` / ``lora_B`` (of every adapter)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in lora_layers(model).values():
        for A, B, _, _ in layer.adapters.values():
            A.requires_grad_(True)
            B.requires_grad_(True)


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) scalar counts, tied parameters once."""
    return model.num_parameters(trainable_only=True), model.num_parameters()


def apply_lora(model, r: int = 8, alpha: float = 16, target_modules=BERT_ATTENTION,
               dropout: float = 0.0, adapter_name: str = "default"):  # fmt: skip
    """Wrap every ``Linear`` matching ``target_modules`` in a ``LoRALinear`` (or add the adapter
    ``adapter_name`` to layers already wrapped); freeze all but the adapters. Returns ``model``."""
    if isinstance(target_modules, str):
        target_modules = tuple(t for t in target_modules.replace(",", " ").split() if t)
    names = [n for n, m in model.named_modules()
             if isinstance(m, (Linear, LoRALinear)) and _matches(n, target_modules)]  # fmt: skip
    if not names:
        raise ValueError(f"LoRA target pattern(s) {list(target_modules)} match no Linear layer")
    for name in names:
        module = _submodule(model, name)
        if isinstance(module, LoRALinear):
            module.add_adapter(adapter_name, r, alpha)
            continue
        try:
            _set_submodule(model, name, LoRALinear(module, r, alpha, dropout, adapter_name))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    mark_only_lora_as_trainable(model)
    return model


def set_adapter(model, name: str) -> None:
    for layer in lora_layers(model).values():
        layer.set_adapter(name)


def merge_adapter(model) -> None:
    for layer in lora_layers(model).values():
        layer.merge()


def unmerge_adapter(model) -> None:
    for layer in lora_layers(model).values():
        layer.unmerge()


def merge_and_unload(model):
    """Fold the active adapter into the weights and put plain ``Linear``s back. Returns model."""
    for name, layer in lora_layers(model).items():
        _set_submodule(model, name, layer.to_linear())
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def save_adapter(model, directory: str) -> None:
    """The active adapter alone: ``adapter_model.safetensors`` (``<layer>.lora_A`` / ``lora_B``)
    and ``adapter_config.json`` (r, alpha, targets and each base layer's (out, in) shape)."""
    from safetensors.numpy import save_file

    layers = lora_layers(model)
    if not layers:
        raise ValueError("the model has no LoRA adapter to save")
    os.makedirs(directory, exist_ok=True)
    tensors, shapes, first = {}, {}, next(iter(layers.values()))
    for name, layer in layers.items():
        tensors[name + ".lora_A"] = np.ascontiguousarray(layer.lora_A.data)
        tensors[name + ".lora_B"] = np.ascontiguousarray(layer.lora_B.data)
        shapes[name] = [layer.out_features, layer.in_features]
    _, _, r, alpha = first.adapters[first.active]
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha,
              "base_model_class": type(model).__name__, "target_modules": sorted(shapes),
              "base_shapes": shapes}  # fmt: skip
    text = json.dumps(config, indent=1) + "\n"
    atomic_write(os.path.join(directory, ADAPTER_WEIGHTS), lambda tmp: save_file(tensors, tmp))
    atomic_write_text(os.path.join(directory, ADAPTER_CONFIG), text)


def read_adapter_config(directory: str) -> dict:
    path = os.path.join(directory, ADAPTER_CONFIG)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {ADAPTER_CONFIG} in {directory!r}: not an adapter directory")
    return read_json_object(path, "an adapter config must be a JSON object")


def load_adapter(model, directory: str, name: str = "default"):
    """Add the adapter in ``directory`` to ``model`` as ``name`` and make it active. Refuses a
    base whose layer names or shapes differ from the ones the adapter was trained on."""
    from safetensors.numpy import load_file

    config = read_adapter_config(directory)
    modules = dict(model.named_modules())
    for layer, (out_f, in_f) in config["base_shapes"].items():
        m = modules.get(layer)
        if not isinstance(m, (Linear, LoRALinear)):
            raise ValueError(f"adapter {directory!r} is for another base: no Linear {layer!r}")
        if (m.out_features, m.in_features) != (out_f, in_f):
            raise ValueError(
                f"adapter {directory!r} is for another base: {layer} is "
                f"{m.out_features}x{m.in_features} here, {out_f}x{in_f} in the adapter"
            )
    tensors = load_file(os.path.join(directory, ADAPTER_WEIGHTS))
    apply_lora(model, int(config["r"]), config["lora_alpha"], tuple(config["base_shapes"]),
               adapter_name=name)  # fmt: skip
    for layer_name, layer in lora_layers(model).items():
        if layer_name not in config["base_shapes"]:
            continue
        for key, param in (("lora_A", layer.lora_A), ("lora_B", layer.lora_B)):
            value = tensors[f"{layer_name}.{key}"]
            if value.shape != param.shape:
                raise ValueError(f"{layer_name}.{key} has shape {value.shape}, expected "
                                 f"{param.shape}")  # fmt: skip
            param.data[...] = value
    return model
