"""Putting LoRA adapters on a model, and saving / loading them alone.

    apply_lora(model, r=8, alpha=16, target_modules=("query", "key", "value", "attention.output.dense"))
    apply_lora(classifier, 8, 16, modules_to_save=("classifier",))  # the new head trains in full
    save_adapter(model, "adapter/")            # adapter_model.safetensors + adapter_config.json
    load_adapter(model, "adapter/", name="sentiment");  set_adapter(model, "sentiment")
    apply_lora(model, 8, 16, adapter_name="topics", modules_to_save=("classifier",))
    task_head(model, 14, names)                # "topics" owns a 14-class head (saved.py)

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
    ORIGINAL,
    active_saved_state,
    adapter_labels,
    add_modules_to_save,
    all_saved_parameters,
    forget_saved_modules,
    get_submodule,
    matching_modules,
    saved_modules,
    set_labels,
    set_saved_adapter,
    set_submodule,
    task_head,
)
from .tokens import DELTA, TrainableTokens, add_trainable_tokens, all_token_layers, token_layers

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
BERT_ATTENTION = ("query", "key", "value", "attention.output.dense")
GPT_ATTENTION = ("c_attn", "attn.c_proj")


def _matches(name: str, patterns) -> bool:
    return any(name == p or name.endswith("." + p) for p in patterns)


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
    for layer in all_token_layers(model):
        for p in layer.parameters_aside():
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
               modules_to_save=(), trainable_token_indices=None):  # fmt: skip
    """Wrap every ``Linear`` matching ``target_modules`` in a ``LoRALinear`` (or add the adapter
    ``adapter_name`` to layers already wrapped); give the adapter its own trainable copy of each
    module matching ``modules_to_save`` (a new task head, see ``saved.py``) and its own rows
    ``{embedding name: token ids}`` of ``trainable_token_indices`` (new tokens, ``tokens.py``);
    freeze the rest. Returns ``model``."""
    target_modules, modules_to_save = _patterns(target_modules), _patterns(modules_to_save)
    names = [n for n, m in model.named_modules()
             if isinstance(m, (Linear, LoRALinear)) and _matches(n, target_modules)]  # fmt: skip
    if not names:
        raise ValueError(f"LoRA target pattern(s) {list(target_modules)} match no Linear layer")
    for name in names:
        module = get_submodule(model, name)
        if isinstance(module, LoRALinear):
            module.add_adapter(adapter_name, r, alpha)
            continue
        try:
            set_submodule(model, name, LoRALinear(module, r, alpha, dropout, adapter_name))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if modules_to_save:
        add_modules_to_save(model, matching_modules(model, modules_to_save, _matches), adapter_name)
    for module_name, ids in (trainable_token_indices or {}).items():
        add_trainable_tokens(model, module_name, ids, adapter_name)
    mark_only_lora_as_trainable(model)
    set_adapter(model, adapter_name)  # layers this adapter does not target run as their base
    return model


def adapter_names(model) -> list[str]:
    """Every adapter loaded on ``model``: on any LoRA layer or with any saved module."""
    names = {n for layer in lora_layers(model).values() for n in layer.adapters}
    names.update(n for copies in saved_modules(model).values() for n in copies)
    names.update(n for layer in token_layers(model).values() for n in layer.adapters)
    return sorted(names)


def set_adapter(model, name: str) -> None:
    """Make adapter ``name`` the one that runs, trains and is saved: its ``lora_A`` / ``lora_B``
    in every layer it targets (the others run as their base, as in ``peft``) and its own copy
    of every saved module, its head included. The base weights are not touched."""
    if name not in adapter_names(model):
        raise ValueError(f"no adapter {name!r}; loaded: {adapter_names(model)}")
    for layer in [*lora_layers(model).values(), *all_token_layers(model)]:
        layer.set_adapter(name)
    set_saved_adapter(model, name)


def merge_adapter(model) -> None:
    for layer in [*lora_layers(model).values(), *all_token_layers(model)]:
        layer.merge()


def unmerge_adapter(model) -> None:
    for layer in [*lora_layers(model).values(), *all_token_layers(model)]:
        layer.unmerge()


def merge_and_unload(model):
    """Fold the active adapter into the weights (LoRA pairs and token rows) and put the base's
    ``Linear`` / ``Embedding`` modules back. Returns model."""
    for name, layer in lora_layers(model).items():
        set_submodule(model, name, layer.to_linear())
    tokens = [n for n, m in model.named_modules() if isinstance(m, TrainableTokens)]
    for name in tokens:
        set_submodule(model, name, get_submodule(model, name).to_base())
    forget_saved_modules(model)  # the active adapter's head stays registered
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def save_adapter(model, directory: str, base_model_name_or_path: str | None = None) -> None:
    """The active adapter alone: ``adapter_model.safetensors`` (``<layer>.lora_A`` / ``lora_B``
    of the layers it targets, its saved modules' parameters, ``classifier.weight``, and its
    token rows, ``transformer.wte.trainable_tokens_delta``) and ``adapter_config.json`` (r,
    alpha, targets, each base layer's (out, in) shape, each saved parameter's shape, the head's
    class names, the token ids and their table's shape)."""
    from safetensors.numpy import save_file

    layers = {n: m for n, m in lora_layers(model).items() if m.has_active}
    if not layers:
        raise ValueError("the model has no active LoRA adapter to save")
    os.makedirs(directory, exist_ok=True)
    tensors, shapes, first = {}, {}, next(iter(layers.values()))
    for name, layer in layers.items():
        tensors[name + ".lora_A"] = np.ascontiguousarray(layer.lora_A.data)
        tensors[name + ".lora_B"] = np.ascontiguousarray(layer.lora_B.data)
        shapes[name] = [layer.out_features, layer.in_features]
    saved = {k: np.ascontiguousarray(v) for k, v in active_saved_state(model).items()}
    tensors.update(saved)
    rows = {n: m for n, m in token_layers(model).items() if m.has_active}
    for name, layer in rows.items():
        tensors[f"{name}.{DELTA}"] = np.ascontiguousarray(layer.adapters[layer.active][1].data)
    _, _, r, alpha = first.adapters[first.active]
    modules = sorted({k.rsplit(".", 1)[0] for k in saved} & set(saved_modules(model)))
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha,
              "base_model_class": type(model).__name__, "target_modules": sorted(shapes),
              "base_shapes": shapes, "modules_to_save": modules,
              "saved_shapes": {k: list(v.shape) for k, v in saved.items()},
              "labels": adapter_labels(model),
              "trainable_token_indices": {n: m.adapters[m.active][0].tolist()
                                          for n, m in rows.items()},
              "token_shapes": {n: list(m.weight.shape) for n, m in rows.items()},
              "base_model_name_or_path": base_model_name_or_path}  # fmt: skip
    text = json.dumps(config, indent=1) + "\n"
    atomic_write(os.path.join(directory, ADAPTER_WEIGHTS), lambda tmp: save_file(tensors, tmp))
    atomic_write_text(os.path.join(directory, ADAPTER_CONFIG), text)


def read_adapter_config(directory: str) -> dict:
    path = os.path.join(directory, ADAPTER_CONFIG)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {ADAPTER_CONFIG} in {directory!r}: not an adapter directory")
    return read_json_object(path, "an adapter config must be a JSON object")


def _base_module(model, name: str):
    """The base model's own module ``name`` (not an adapter's copy of it), or None."""
    original = model.__dict__.get(ORIGINAL, {})
    if name in original:
        return original[name]
    try:
        return get_submodule(model, name)
    except AttributeError:
        return None


def _check_saved(model, config: dict, tensors: dict, directory: str) -> None:
    """A saved module must exist on the base with the same parameters; a ``Linear`` head may
    differ in its number of outputs (the adapter brings its own head), not in its inputs."""
    another = f"adapter {directory!r} is for another base"
    shapes = config.get("saved_shapes", {})
    for module_name in config.get("modules_to_save", ()):
        base = _base_module(model, module_name)
        if base is None:
            raise ValueError(f"{another}: no module {module_name!r} (a saved module)")
        own = {f"{module_name}.{p}": list(v.shape) for p, v in base.named_parameters()}
        mine = {k: list(v) for k, v in shapes.items() if k.startswith(module_name + ".")}
        if sorted(own) != sorted(mine):
            raise ValueError(f"{another}: {module_name} has parameters {sorted(own)} here, "
                             f"{sorted(mine)} in the adapter")  # fmt: skip
        for key, shape in mine.items():
            if key not in tensors:
                raise ValueError(f"adapter {directory!r} is damaged: no tensor {key!r}")
            fits = shape == own[key] or (isinstance(base, Linear) and shape[1:] == own[key][1:])
            if not fits:
                raise ValueError(f"{another}: {key} is {own[key]} here, {shape} in the adapter")


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
    _check_saved(model, config, tensors, directory)
    for layer, shape in config.get("token_shapes", {}).items():
        m = modules.get(layer)
        if not hasattr(m, "weight") or list(m.weight.shape) != list(shape):
            got = list(m.weight.shape) if hasattr(m, "weight") else "missing"
            raise ValueError(f"{another}: embedding {layer} is {got} here, {shape} in the adapter")
        want = (len(config["trainable_token_indices"][layer]), shape[1])
        got = tensors.get(f"{layer}.{DELTA}")
        if got is None or got.shape != want:
            raise ValueError(f"adapter {directory!r} is damaged: {layer}.{DELTA} is "
                             f"{None if got is None else got.shape}, expected {want}")  # fmt: skip


def load_adapter(model, directory: str, name: str = "default"):
    """Add the adapter in ``directory`` to ``model`` as ``name`` and make it active: its LoRA
    pairs and its saved modules (its task head, of its own size and class names). Refuses,
    before changing anything, a base whose layer or parameter names or shapes differ from the
    ones the adapter was trained on."""
    from safetensors.numpy import load_file

    config = read_adapter_config(directory)
    tensors = load_file(os.path.join(directory, ADAPTER_WEIGHTS))
    _check_base(model, config, tensors, directory)
    apply_lora(model, int(config["r"]), config["lora_alpha"], tuple(config["base_shapes"]),
               adapter_name=name, modules_to_save=config.get("modules_to_save", ()),
               trainable_token_indices=config.get("trainable_token_indices"))  # fmt: skip
    for layer_name, layer in token_layers(model).items():
        if layer_name in config.get("token_shapes", {}):
            layer.adapters[name][1].data[...] = tensors[f"{layer_name}.{DELTA}"]
    for layer_name, layer in lora_layers(model).items():
        if layer_name in config["base_shapes"]:
            layer.lora_A.data[...] = tensors[f"{layer_name}.lora_A"]
            layer.lora_B.data[...] = tensors[f"{layer_name}.lora_B"]
    for module_name in config.get("modules_to_save", ()):
        module = get_submodule(model, module_name)  # this adapter's copy of the base's module
        key = f"{module_name}.weight"
        if isinstance(module, Linear) and config["saved_shapes"][key][0] != module.out_features:
            module = task_head(model, config["saved_shapes"][key][0], None, module_name)
        for p, value in module.named_parameters():
            value.data[...] = tensors[f"{module_name}.{p}"]
    set_labels(model, config.get("labels"))
    mark_only_lora_as_trainable(model)
    return model
