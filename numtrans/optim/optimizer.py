"""``Optimizer``: the base class that holds parameter groups and per-parameter state.

An optimiser owns

* ``param_groups``: a list of dicts, each with ``'params'`` (a list of Tensors) and that group's
  hyperparameters (``'lr'``, ``'weight_decay'``, ...). Schedulers change ``group['lr']`` in place;
  groups let biases and norm weights skip weight decay (see ``param_groups_for_weight_decay``).
* ``state``: a dict keyed by the parameter Tensor itself, e.g. ``{'step': 3, 'exp_avg': array}``,
  allocated lazily on the first step that sees a gradient for that parameter.

``state_dict()`` replaces every parameter by its index (counted across groups, in order), so the
saved state does not depend on object identities and can be loaded into a freshly built model::

    {'state': {0: {'step': 3, 'exp_avg': ndarray, ...}, ...},
     'param_groups': [{'lr': 0.001, 'weight_decay': 0.01, ..., 'params': [0, 1, 2]}, ...]}

It holds NumPy arrays and plain numbers only: ``numtrans.optim.optimizer_state_to_flat`` turns it
into (arrays, JSON) for a safetensors checkpoint without pickle.
"""

from __future__ import annotations

import numpy as np

from ..autograd import enable_grad
from ..tensor import Tensor


class Optimizer:
    """Base class. Subclasses call ``super().__init__(params, defaults)`` and implement ``step``.

    ``params`` is an iterable of Tensors (e.g. ``model.parameters()``) or of dicts, each dict a
    parameter group ``{'params': [...], 'lr': ..., ...}``; keys missing from a group take the
    value from ``defaults`` (the optimiser's constructor arguments).
    """

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError(
                "params should be an iterable of Tensors or of dicts (parameter groups), "
                "got a single Tensor; wrap it in a list: [param]"
            )
        if isinstance(params, set):
            raise TypeError("parameters must be in an ordered collection (list), not a set")
        if isinstance(params, dict):
            raise TypeError("params should be a list of parameter-group dicts, got one dict")
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)
        if not any(group["params"] for group in self.param_groups):
            raise ValueError("optimizer got an empty parameter list (every group is empty)")
        # Scratch space for the update's temporaries (see ``_workspace``).
        self._scratch: dict = {}

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict) -> None:
        """Add a group (e.g. layers unfrozen during fine-tuning); checks types and duplicates."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("a parameter group needs a 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("parameters must be in an ordered collection (list), not a set")
        group["params"] = params = list(params)
        for i, p in enumerate(params):
            if isinstance(p, tuple):
                raise TypeError(
                    "got a (name, parameter) pair: pass model.parameters(), or build groups with "
                    "numtrans.optim.param_groups_for_weight_decay(model.named_parameters(), wd)"
                )
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, param {i} is {type(p)}")
            if not np.issubdtype(p.dtype, np.floating):
                raise TypeError(
                    f"optimizer can only optimize floating-point parameters, param {i} of shape "
                    f"{p.shape} has dtype {p.dtype}"
                )
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError("a parameter group contains the same parameter twice")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if seen.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict) -> None:
        """Validate one group's hyperparameters (subclasses extend this)."""
        lr = group.get("lr")
        if lr is None or not lr >= 0.0:
            raise ValueError(f"invalid learning rate {lr!r}: must be >= 0")
        wd = group.get("weight_decay", 0.0)
        if not wd >= 0.0:
            raise ValueError(f"invalid weight_decay {wd!r}: must be >= 0")

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients. ``set_to_none=False`` zeroes the arrays in place instead."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.fill(0)

    def step(self, closure=None):
        """Update every parameter that has a gradient; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:  # unused this step (or frozen): leave it and its state alone
                    continue
                if p.grad.shape != p.data.shape:
                    raise ValueError(
                        f"parameter of shape {p.data.shape} has a gradient of shape {p.grad.shape}"
                    )
                self._update(p, p.grad, group)
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, group: dict) -> None:
        raise NotImplementedError

    def _workspace(self, p: Tensor, slot: int = 0) -> np.ndarray:
        """A scratch array shaped like ``p`` for the temporaries of one update.

        One flat buffer per (slot, dtype), grown to the largest parameter seen, is reused by every
        parameter: no allocation in the hot loop, and at most a few parameter-sized extras.
        """
        key = (slot, p.dtype)
        buf = self._scratch.get(key)
        if buf is None or buf.size < p.data.size:
            buf = self._scratch[key] = np.empty(p.data.size, dtype=p.dtype)
        return buf[: p.data.size].reshape(p.data.shape)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """``{'state': {index: {...}}, 'param_groups': [...]}``; arrays are copies."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        k: v.copy() if isinstance(v, np.ndarray) else v
                        for k, v in self.state[p].items()
                    }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore state saved by ``state_dict`` into this optimiser (same groups, same sizes).

        Hyperparameters (lr, betas, ...) come from the saved groups; state arrays are copied and
        cast to each parameter's dtype.
        """
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        params_by_index = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"parameter group {i} has {len(group['params'])} parameters but the loaded "
                    f"state dict's group has {len(saved['params'])}"
                )
            params_by_index.update(zip(saved["params"], group["params"]))
        new_state = {}
        for key, saved_state in state_dict["state"].items():
            idx = int(key)  # JSON turns integer keys into strings
            if idx not in params_by_index:
                raise ValueError(f"loaded state refers to parameter {idx}, which no group contains")
            p = params_by_index[idx]
            restored = {}
            for name, value in saved_state.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p.data.shape:
                        raise ValueError(
                            f"state '{name}' of parameter {idx} has shape {value.shape}, "
                            f"the parameter has shape {p.data.shape}"
                        )
                    value = np.array(value, dtype=p.dtype)  # a private copy
                restored[name] = value
            new_state[p] = restored
        self.state = new_state
        for saved, group in zip(saved_groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    group[k] = tuple(v) if isinstance(v, list) else v

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        return "\n".join(lines) + "\n)"


def param_groups_for_weight_decay(
    named_parameters, weight_decay: float, no_decay_names=()
) -> list[dict]:
    """Split parameters into a decayed and a non-decayed group (nanoGPT's convention).

    Parameters with ``ndim >= 2`` (weight matrices, and also embedding tables, which are 2-D) go
    into ``{'params': [...], 'weight_decay': weight_decay}``; those with ``ndim < 2`` (biases,
    LayerNorm weights and biases) into ``{'params': [...], 'weight_decay': 0.0}``: decaying a bias
    or a norm gain towards 0 only fights the model. Names containing any string of
    ``no_decay_names`` also skip decay, e.g. ``no_decay_names=("embed",)`` for embeddings.
    Parameters with ``requires_grad=False`` are left out. Both groups are always returned (decay
    first), possibly empty, so group indices are stable for per-group schedules::

        opt = AdamW(param_groups_for_weight_decay(model.named_parameters(), 0.1), lr=3e-4)
    """
    if isinstance(no_decay_names, str):
        no_decay_names = (no_decay_names,)
    items = named_parameters.items() if isinstance(named_parameters, dict) else named_parameters
    decay, no_decay = [], []
    for name, p in items:
        if not getattr(p, "requires_grad", False):
            continue
        if p.ndim < 2 or any(s in name for s in no_decay_names):
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
