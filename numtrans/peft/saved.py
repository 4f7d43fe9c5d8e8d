"""``modules_to_save`` (``peft``'s name): whole modules that train and are saved with an adapter.

A classifier's new head (``classifier``: H -> K) has no pretrained weights for a low-rank update
to adapt: it starts fresh and trains in full. It is small (H * K + K numbers), so it is stored in
the adapter file beside ``lora_A`` / ``lora_B``, and each adapter owns its own head module, of
its own size and with its own class names:

    model.classifier   is   adapter "sentiment"'s head: Linear(384, 2),  labels [neg, pos]
                       is   adapter "topics"'s head:    Linear(384, 14), labels [Company, ...]

``set_adapter`` swaps which module is *registered* under the usual name (``classifier``), as
``LoRALinear`` does with ``lora_A`` / ``lora_B``: no values are copied, the base is untouched,
and ``state_dict()`` keeps its keys (``classifier.weight``). The model's ``num_labels`` follows
the registered head. A new adapter's head starts as a copy of the base model's own head (as in
``peft``); :func:`task_head` gives it a fresh one for other classes. An adapter without a copy
of some module uses the base's module there (``peft`` does the same).

The registry lives on the model (``model.__dict__``, not registered, so not in ``state_dict``):

    peft_modules_to_save   {module name: {adapter name: Module}}
    peft_original_modules  {module name: the base model's module}
    peft_labels            {adapter name: class names or None}
    peft_active_adapter    the adapter whose modules are registered

and the model's ``parameters_aside`` (read by ``Module.to``) yields every copy's parameters, so
``model.double()`` casts the heads of inactive adapters too.
"""

from __future__ import annotations

import copy
import types

from ..nn import init
from ..nn.linear import Linear

REGISTRY, ORIGINAL, LABELS, ACTIVE = (
    "peft_modules_to_save", "peft_original_modules", "peft_labels", "peft_active_adapter",
)  # fmt: skip
HEADS = ("classifier", "score")  # the sequence classifiers' heads: num_labels follows them


def get_submodule(model, name: str):
    module = model
    for part in name.split(".") if name else ():
        module = getattr(module, part)
    return module


def set_submodule(model, name: str, module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(get_submodule(model, parent_name), child, module)


def saved_modules(model) -> dict:
    """``{module name: {adapter name: Module}}`` (empty when none)."""
    return model.__dict__.get(REGISTRY, {})


def active_adapter(model):
    return model.__dict__.get(ACTIVE)


def matching_modules(model, patterns, matches) -> list[str]:
    """Names of the modules matching ``patterns`` (not nested in another match)."""
    names = []
    for name, _ in model.named_modules():
        if name and matches(name, patterns) and not any(name.startswith(n + ".") for n in names):
            names.append(name)
    if not names:
        raise ValueError(f"modules_to_save pattern(s) {list(patterns)} match no module")
    return names


def _registry(model) -> dict:
    if REGISTRY not in model.__dict__:
        for key in (REGISTRY, ORIGINAL, LABELS):
            object.__setattr__(model, key, {})
        # Module.to casts what this yields: the copies that are not registered right now. A
        # bound method, so that copy.deepcopy(model) binds it to the copy.
        object.__setattr__(
            model, "parameters_aside", types.MethodType(_all_copies_parameters, model)
        )
    return model.__dict__[REGISTRY]


def add_modules_to_save(model, names, adapter_name: str) -> None:
    """Give adapter ``adapter_name`` its own copy of each module in ``names`` (a deep copy of
    the base's module, unless it has one already)."""
    registry, original = _registry(model), model.__dict__[ORIGINAL]
    for name in names:
        copies = registry.setdefault(name, {})
        if name not in original:
            original[name] = get_submodule(model, name)
        if adapter_name not in copies:
            copies[adapter_name] = copy.deepcopy(original[name])
    model.__dict__[LABELS].setdefault(adapter_name, None)


def task_head(model, num_labels: int, labels=None, module: str = "classifier"):
    """Give the active adapter a fresh head ``module`` with ``num_labels`` outputs (class names
    ``labels``): a ``Linear(in, num_labels)`` like the base's (bias or not, dtype), weights
    drawn from N(0, 0.02^2) and a zero bias, as BERT and GPT initialise their heads. Returns it."""
    name, copies = active_adapter(model), saved_modules(model).get(module, {})
    if name not in copies:
        raise ValueError(f"{module!r} is not among adapter {name!r}'s modules_to_save")
    if labels is not None and len(labels) != num_labels:
        raise ValueError(f"{len(labels)} label names for a head of {num_labels} outputs")
    old = copies[name]
    if not isinstance(old, Linear) or num_labels < 1:
        raise ValueError(f"a task head needs a Linear {module!r} and num_labels >= 1")
    head = Linear(old.in_features, num_labels, bias=old.bias is not None, dtype=old.weight.dtype)
    init.normal_(head.weight, std=0.02)
    if head.bias is not None:
        init.zeros_(head.bias)
    copies[name] = head
    model.__dict__[LABELS][name] = None if labels is None else [str(v) for v in labels]
    set_saved_adapter(model, name)
    return head


def set_labels(model, labels, adapter_name: str | None = None) -> None:
    """Record the class names of ``adapter_name``'s head (default: the active adapter)."""
    _registry(model)
    name = active_adapter(model) if adapter_name is None else adapter_name
    model.__dict__[LABELS][name] = None if labels is None else [str(v) for v in labels]


def adapter_labels(model, adapter_name: str | None = None):
    """The class names of an adapter's head (default: the active one); None if unrecorded."""
    name = active_adapter(model) if adapter_name is None else adapter_name
    return model.__dict__.get(LABELS, {}).get(name)


def set_saved_adapter(model, adapter_name: str) -> None:
    """Register adapter ``adapter_name``'s copy of every saved module (the base's own module
    where it has none), and set ``num_labels`` to the registered head's size."""
    object.__setattr__(model, ACTIVE, adapter_name)
    for name, copies in saved_modules(model).items():
        set_submodule(model, name, copies.get(adapter_name, model.__dict__[ORIGINAL][name]))
    for name in HEADS:
        head = getattr(model, name, None) if name in getattr(model, "_modules", {}) else None
        if isinstance(head, Linear) and hasattr(getattr(model, "config", None), "num_labels"):
            model.config.num_labels = head.out_features
            if "num_labels" in model.__dict__:
                model.num_labels = head.out_features


def _all_copies_parameters(model):
    for name, copies in saved_modules(model).items():
        for module in [*copies.values(), model.__dict__[ORIGINAL][name]]:
            yield from module.parameters()


def all_saved_parameters(model):
    """Every adapter's copy of every saved parameter (to mark them trainable)."""
    for copies in saved_modules(model).values():
        for module in copies.values():
            yield from module.parameters()


def active_saved_state(model) -> dict:
    """``{"classifier.weight": array, ...}``: the active adapter's own copies, for its file."""
    name = active_adapter(model)
    return {
        f"{module}.{p}": value.data
        for module, copies in saved_modules(model).items()
        if name in copies
        for p, value in copies[name].named_parameters()
    }


def forget_saved_modules(model) -> None:
    """Drop the registry (``merge_and_unload``): the registered modules stay."""
    for key in (REGISTRY, ORIGINAL, LABELS, ACTIVE, "parameters_aside"):
        model.__dict__.pop(key, None)
