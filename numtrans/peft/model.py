"""Putting LoRA adapters on a model, and saving / loading them alone.

    apply_lora(model, r=8, alpha=16, target_modules=("query", "key", "value", "attention.output.dense"))
    apply_lora(classifier, 8, 16, modules_to_save=("classifier",))  # the new head trains in full
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
from .saved import (
    active_saved_state,
    add_modules_to_save,
    all_saved_parameters,
    forget_saved_modules,
    matching_modules,
    saved_modules,
    set_saved_adapter,
)

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
BERT_ATTENTION = ("query", "key", "value", "attention.output.dense")
GPT_ATTENTION = ("c_attn", "attn.c_proj")


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
    """Freeze everything but ``lora_A`` / ``lora_B`` and the ``modules_to_save`` copies (of
    every adapter)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in lora_layers(model).values():
        for A, B, _, _ in layer.adapters.values():
            A.requires_grad_(True)
            B.requires_grad_(True)
    for p in all_saved_parameters(model):
        p.requires_grad_(True)


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) scalar counts, tied parameters once."""
    return model.num_parameters(trainable_only=True), model.num_parameters()


def _patterns(value) -> tuple:
    if isinstance(value, str):
        return tuple(t for t in value.replace(",", " ").split() if t)
    return tuple(value or ())


def apply_lora(model, r: int = 8, alpha: float = 16, target_modules=BERT_ATTENTION,
               dropout: float = 0.0, adapter_name: str = "default",
               modules_to_save=()):  # fmt: skip
    """Wrap every ``Linear`` matching ``target_modules`` in a ``LoRALinear`` (or add the adapter
    ``adapter_name`` to layers already wrapped); give the adapter its own trainable copy of each
    module matching ``modules_to_save`` (a new task head, see ``saved.py``); freeze the rest.
    Returns ``model``."""
    target_modules, modules_to_save = _patterns(target_modules), _patterns(modules_to_save)
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
    if modules_to_save:
        add_modules_to_save(model, matching_modules(model, modules_to_save, _matches), adapter_name)
    mark_only_lora_as_trainable(model)
    return model


def set_adapter(model, name: str) -> None:
    """Make adapter ``name`` the one that runs, trains and is saved: its ``lora_A`` / ``lora_B``
    in every layer and its copy of every saved module. The base weights are not touched."""
    for layer in lora_layers(model).values():
        layer.set_adapter(name)
    set_saved_adapter(model, name)


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
    forget_saved_modules(model)  # the active adapter's head stays registered
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def save_adapter(model, directory: str, base_model_name_or_path: str | None = None) -> None:
    """The active adapter alone: ``adapter_model.safetensors`` (``<layer>.lora_A`` / ``lora_B``,
    and the saved modules' parameters, ``classifier.weight``) and ``adapter_config.json`` (r,
    alpha, targets, each base layer's (out, in) shape and each saved parameter's shape)."""
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
    saved = {k: np.ascontiguousarray(v) for k, v in active_saved_state(model).items()}
    tensors.update(saved)
    _, _, r, alpha = first.adapters[first.active]
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha,
              "base_model_class": type(model).__name__, "target_modules": sorted(shapes),
              "base_shapes": shapes, "modules_to_save": sorted(saved_modules(model)),
              "saved_shapes": {k: list(v.shape) for k, v in saved.items()},
              "base_model_name_or_path": base_model_name_or_path}  # fmt: skip
    text = json.dumps(config, indent=1) + "\n"
    atomic_write(os.path.join(directory, ADAPTER_WEIGHTS), lambda tmp: save_file(tensors, tmp))
    atomic_write_text(os.path.join(directory, ADAPTER_CONFIG), text)


def read_adapter_config(directory: str) -> dict:
    path = os.path.join(directory, ADAPTER_CONFIG)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {ADAPTER_CONFIG} in {directory!r}: not an adapter directory")
    return read_json_object(path, "an adapter config must be a JSON object")


def _check_base(model, config: dict, tensors: dict, directory: str) -> None:
    """Refuse (one line) a base whose layer names or shapes differ from the adapter's."""
    another = f"adapter {directory!r} is for another base"
    modules, r = dict(model.named_modules()), int(config["r"])
    for layer, (out_f, in_f) in config["base_shapes"].items():
        m = modules.get(layer)
        if not isinstance(m, (Linear, LoRALinear)):
            raise ValueError(f"{another}: no Linear {layer!r}")
        if (m.out_features, m.in_features) != (out_f, in_f):
            raise ValueError(f"{another}: {layer} is {m.out_features}x{m.in_features} here, "
                             f"{out_f}x{in_f} in the adapter")  # fmt: skip
        for key, shape in (("lora_A", (r, in_f)), ("lora_B", (out_f, r))):
            got = tensors.get(f"{layer}.{key}")
            if got is None or got.shape != shape:
                raise ValueError(f"adapter {directory!r} is damaged: {layer}.{key} is "
                                 f"{None if got is None else got.shape}, expected {shape}")  # fmt: skip
    params = dict(model.named_parameters())
    for key, shape in config.get("saved_shapes", {}).items():
        if key not in params:
            raise ValueError(f"{another}: no parameter {key!r} (a saved module)")
        if list(params[key].shape) != list(shape):
            raise ValueError(f"{another}: {key} is {list(params[key].shape)} here, {shape} in "
                             "the adapter")  # fmt: skip
        if key not in tensors:
            raise ValueError(f"adapter {directory!r} is damaged: no tensor {key!r}")


def load_adapter(model, directory: str, name: str = "default"):
    """Add the adapter in ``directory`` to ``model`` as ``name`` and make it active: its LoRA
    pairs and its saved modules (a task head). Refuses, before changing anything, a base whose
    layer or parameter names or shapes differ from the ones the adapter was trained on."""
    from safetensors.numpy import load_file

    config = read_adapter_config(directory)
    tensors = load_file(os.path.join(directory, ADAPTER_WEIGHTS))
    _check_base(model, config, tensors, directory)
    apply_lora(model, int(config["r"]), config["lora_alpha"], tuple(config["base_shapes"]),
               adapter_name=name, modules_to_save=config.get("modules_to_save", ()))  # fmt: skip
    for layer_name, layer in lora_layers(model).items():
        if layer_name in config["base_shapes"]:
            layer.lora_A.data[...] = tensors[f"{layer_name}.lora_A"]
            layer.lora_B.data[...] = tensors[f"{layer_name}.lora_B"]
    params = dict(model.named_parameters())
    for key in config.get("saved_shapes", {}):
        params[key].data[...] = tensors[key]
    return model
