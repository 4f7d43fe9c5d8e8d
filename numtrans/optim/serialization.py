"""Optimiser state as (named arrays, JSON): a checkpoint without pickle.

``optimizer_state_to_flat(opt.state_dict())`` returns

* ``arrays``: ``{"state.<param index>.<name>": np.ndarray}`` (e.g. ``"state.0.exp_avg"``), ready
  for ``safetensors.numpy.save_file``;
* ``meta``: everything else (steps, hyperparameters, param indices), JSON-serialisable, e.g.
  ``{"state": {"0": {"step": 3}}, "param_groups": [{"lr": 0.001, "betas": [0.9, 0.999], ...}]}``.

``optimizer_state_from_flat(arrays, meta)`` rebuilds the ``state_dict`` for ``load_state_dict``.
"""

from __future__ import annotations

import numpy as np


def _to_json(value):
    """NumPy scalars -> Python numbers, tuples -> lists (JSON has no tuples)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in the optimizer's JSON metadata")


def optimizer_state_to_flat(state_dict: dict) -> tuple[dict[str, np.ndarray], dict]:
    """Split an optimiser ``state_dict`` into ``(arrays, json_dict)``."""
    arrays: dict[str, np.ndarray] = {}
    scalar_state: dict[str, dict] = {}
    for idx, pstate in state_dict["state"].items():
        scalars = {}
        for name, value in pstate.items():
            if "." in name:
                raise ValueError(f"state name {name!r} contains '.', which the flat keys use")
            if isinstance(value, np.ndarray):
                arrays[f"state.{int(idx)}.{name}"] = np.ascontiguousarray(value)
            else:
                scalars[name] = _to_json(value)
        scalar_state[str(int(idx))] = scalars
    meta = {"state": scalar_state, "param_groups": _to_json(state_dict["param_groups"])}
    return arrays, meta


def optimizer_state_from_flat(arrays: dict[str, np.ndarray], meta: dict) -> dict:
    """Inverse of ``optimizer_state_to_flat``: a ``state_dict`` for ``load_state_dict``."""
    state: dict[int, dict] = {int(k): dict(v) for k, v in meta["state"].items()}
    for key, array in arrays.items():
        prefix, idx, name = key.split(".", 2)
        if prefix != "state" or not idx.isdigit():
            raise ValueError(f"unexpected array name {key!r}: expected 'state.<index>.<name>'")
        state.setdefault(int(idx), {})[name] = np.asarray(array)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        for k, v in group.items():
            if k != "params" and isinstance(v, list):
                group[k] = tuple(v)  # e.g. betas
        group["params"] = [int(i) for i in group["params"]]
        groups.append(group)
    return {"state": state, "param_groups": groups}
