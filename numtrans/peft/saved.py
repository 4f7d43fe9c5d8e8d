"""``modules_to_save`` (``peft``'s name): whole modules that train and are saved with an adapter.

A classifier's new head (``classifier``: H -> K) has no pretrained weights for a low-rank update
to adapt: it starts random and must train in full. It is small (H * K + K numbers), so it is
stored in the adapter file beside ``lora_A`` / ``lora_B``, and each adapter has its own copy:

    model.classifier.weight   is   adapter "sentiment"'s copy   (after set_adapter("sentiment"))
                              is   adapter "topics"'s copy      (after set_adapter("topics"))

Switching swaps which copy is *registered* under the module's usual names (``classifier.weight``),
as ``LoRALinear`` does with ``lora_A`` / ``lora_B``: no values are copied, the base is untouched,
and ``state_dict()`` keeps its keys. A new adapter's copy starts from the module's values as they
were when it was first listed (the base model's head), as in ``peft``.

The copies live in a dict on the model (``model.peft_modules_to_save``):
``{module name: {adapter name: {parameter name: Parameter}}}``, plus the first values in
``model.peft_original_modules``.
"""

from __future__ import annotations

from ..nn.module import Parameter

REGISTRY = "peft_modules_to_save"
ORIGINAL = "peft_original_modules"


def saved_modules(model) -> dict:
    """``{module name: {adapter name: {parameter name: Parameter}}}`` (empty when none)."""
    return model.__dict__.get(REGISTRY, {})


def _owner(module, dotted: str):
    """(the module holding parameter ``dotted``, its own name): ``"a.b.weight"`` -> (a.b, weight)."""
    *path, leaf = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    return module, leaf


def matching_modules(model, patterns, matches) -> list[str]:
    """Names of the modules matching ``patterns`` (not nested in another match)."""
    names = []
    for name, _ in model.named_modules():
        if name and matches(name, patterns) and not any(name.startswith(n + ".") for n in names):
            names.append(name)
    if not names:
        raise ValueError(f"modules_to_save pattern(s) {list(patterns)} match no module")
    return names


def add_modules_to_save(model, names, adapter_name: str) -> None:
    """Give adapter ``adapter_name`` its own trainable copy of each module in ``names``; make
    those copies the registered (active) ones."""
    if REGISTRY not in model.__dict__:
        object.__setattr__(model, REGISTRY, {})
        object.__setattr__(model, ORIGINAL, {})
    registry, original = model.__dict__[REGISTRY], model.__dict__[ORIGINAL]
    modules = dict(model.named_modules())
    for name in names:
        module = modules[name]
        copies = registry.setdefault(name, {})
        if not copies:  # the first adapter takes the live parameters; keep their start values
            original[name] = {p: v.data.copy() for p, v in module.named_parameters()}
            copies[adapter_name] = dict(module.named_parameters())
        elif adapter_name not in copies:
            copies[adapter_name] = {
                p: Parameter(value.copy()) for p, value in original[name].items()
            }
        activate(module, copies[adapter_name])


def activate(module, params: dict) -> None:
    for dotted, param in params.items():
        owner, leaf = _owner(module, dotted)
        setattr(owner, leaf, param)


def set_saved_adapter(model, adapter_name: str) -> None:
    """Register adapter ``adapter_name``'s copy of every saved module."""
    modules = dict(model.named_modules())
    for name, copies in saved_modules(model).items():
        if adapter_name not in copies:
            raise ValueError(
                f"adapter {adapter_name!r} has no copy of {name!r}; it has: {sorted(copies)}"
            )
        activate(modules[name], copies[adapter_name])


def all_saved_parameters(model):
    """Every adapter's copy of every saved parameter (to mark them trainable)."""
    for copies in saved_modules(model).values():
        for params in copies.values():
            yield from params.values()


def active_saved_state(model) -> dict:
    """``{"classifier.weight": array, ...}``: the registered copies, for the adapter file."""
    modules = dict(model.named_modules())
    return {
        f"{name}.{p}": value.data
        for name in saved_modules(model)
        for p, value in modules[name].named_parameters()
    }


def forget_saved_modules(model) -> None:
    """Drop the other adapters' copies (``merge_and_unload``): the registered ones stay."""
    for key in (REGISTRY, ORIGINAL):
        model.__dict__.pop(key, None)
