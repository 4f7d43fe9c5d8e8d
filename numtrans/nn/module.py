"""``Module`` and ``Parameter``: how layers own their weights (PyTorch's design).

A ``Module`` is a Python object whose attributes may be

* ``Parameter``s: trainable tensors (``requires_grad=True``), found by ``parameters()``;
* sub-``Module``s: found recursively, which gives parameters dotted names such as
  ``"h.0.attn.c_attn.weight"`` (the keys of ``state_dict()``);
* buffers (``register_buffer``): NumPy arrays that are state but not trained (e.g. RoPE tables).
  A persistent buffer is saved in ``state_dict()``; a non-persistent one is recomputed.

``__setattr__`` does the bookkeeping: ``self.fc = Linear(3, 4)`` registers a child module.
``forward`` holds the computation and ``module(x)`` calls it.

The same Parameter may be owned by two modules (weight tying, e.g. GPT's ``lm_head.weight`` is
``wte.weight``): ``parameters()`` yields it once, ``state_dict()`` lists it under both names
(as PyTorch does) and ``load_state_dict`` accepts a dict that holds either name or both.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from ..tensor import Tensor, _to_array


class Parameter(Tensor):
    """A Tensor that a Module should train: ``requires_grad=True`` by default."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(np.array(_to_array(data), copy=True), requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of every layer and model. Subclasses set attributes in ``__init__`` (after
    ``super().__init__()``) and define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"call super().__init__() before assigning {name!r}")
        if isinstance(value, Parameter):
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = (
                None if value is None else np.asarray(getattr(value, "data", value))
            )
        elif name in self._parameters and value is None:
            self._parameters[name] = None  # e.g. ``self.bias = None``: the slot stays
        elif name in self._parameters and isinstance(value, Tensor):
            raise TypeError(
                f"cannot assign a plain Tensor to parameter {name!r}: wrap it in nn.Parameter"
            )
        else:
            self._forget(name)
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        for store in (self._parameters, self._modules, self._buffers):
            store.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails, i.e. for registered parameters/modules/buffers.
        for store in ("_parameters", "_modules", "_buffers"):
            values = self.__dict__.get(store)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters or name in self._modules or name in self._buffers:
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, for an absent optional weight such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{name!r} must be a Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, array, persistent: bool = True) -> None:
        """A non-trainable array kept with the module; saved in state_dict if ``persistent``."""
        self._forget(name)
        self._buffers[name] = None if array is None else np.asarray(getattr(array, "data", array))
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        self._forget(name)
        self._modules[name] = module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "", memo: set | None = None):
        """(dotted name, module) for this module and every descendant, each module once."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, child in self._modules.items():
            if child is not None:
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate=True):
        """(dotted name, Parameter); a tied parameter is yielded once (first name) by default."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, module in modules:
            for name, p in module._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = ""):
        for mod_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalars in the parameters, tied ones counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active); ``eval()`` switches it off. Applies to all children."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, mode: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(mode)
        return self

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every submodule (children first) and on self, e.g. for init."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, dtype) -> Module:
        """Cast floating parameters and buffers to ``dtype`` in place (e.g. ``np.float64``),
        and those a module keeps aside (``parameters_aside``: LoRA's inactive adapters)."""
        dtype = np.dtype(dtype)
        aside = [p for m in self.modules() for p in m.parameters_aside()]
        for p in {id(p): p for p in [*self.parameters(), *aside]}.values():
            p.data = p.data.astype(dtype)
            p.grad = None
        for m in self.modules():
            for name, b in m._buffers.items():
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    m._buffers[name] = b.astype(dtype)
        return self

    def parameters_aside(self):
        """Parameters held outside ``_parameters`` that ``to`` must cast too; none by default."""
        return ()

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ------------------------------------------------------------------ state_dict
    def _state_items(self):
        """Every parameter (under each owner's name, so tied ones appear twice) and persistent
        buffer, as (dotted name, Parameter or array)."""
        for mod_name, module in self.named_modules():
            dot = f"{mod_name}." if mod_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    yield dot + name, p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    yield dot + name, b

    def state_dict(self) -> OrderedDict:
        """Ordered name -> np.ndarray (a copy) of every parameter and persistent buffer."""
        return OrderedDict(
            (name, np.array(getattr(v, "data", v), copy=True)) for name, v in self._state_items()
        )

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (anything ``np.asarray`` takes) into the parameters and buffers, by name.

        A wrong shape always raises. With ``strict=True`` a missing or unexpected key raises too;
        every problem is named in one message. Values are cast to the model's dtype. A tied
        parameter is satisfied by any one of its names."""
        items = list(self._state_items())
        errors, loaded = [], set()  # loaded: ids, so a tied parameter counts under every name
        for name, target in items:
            if name not in state_dict:
                continue
            value = np.asarray(getattr(state_dict[name], "data", state_dict[name]))
            if value.shape != target.shape:
                errors.append(
                    f"size mismatch for {name}: checkpoint has shape {value.shape}, "
                    f"the model expects {target.shape}"
                )
                continue
            array = target.data if isinstance(target, Tensor) else target
            array[...] = value  # in place: keeps the dtype, and tied owners see the new values
            loaded.add(id(target))
        missing = [
            name for name, target in items if id(target) not in loaded and name not in state_dict
        ]
        expected = {name for name, _ in items}
        unexpected = [k for k in state_dict if k not in expected]
        if strict:
            if unexpected:
                errors.insert(0, "unexpected keys: " + ", ".join(unexpected))
            if missing:
                errors.insert(0, "missing keys: " + ", ".join(missing))
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n  "
                + "\n  ".join(errors)
            )
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ calling and printing
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """Override to show a layer's settings, e.g. ``in_features=3, out_features=4``."""
        return ""

    def __repr__(self) -> str:
        """PyTorch's layout, plus the parameter count of every module that has parameters."""
        n = self.num_parameters()
        note = f"  # {n:,} params" if n else ""
        head = f"{type(self).__name__}({self.extra_repr()}"
        lines = [
            f"({name}): " + repr(child).replace("\n", "\n  ")
            for name, child in self.named_children()
        ]
        if not lines:
            return head + ")" + note
        return head + note + "\n  " + "\n  ".join(lines) + "\n)"
