"""The files of a saved model directory: their names, and reading a safetensors file safely.

    out/config.json          the config dataclass as JSON (+ "architecture": the class name)
    out/model.safetensors    name -> array, each tied parameter once (``unique_state``)

Kept apart from ``pretrained.py`` (which builds models from these files) and ``hf.py`` (which
renames Hugging Face's tensors) so that both read the same names without importing each other.
"""

from __future__ import annotations

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def read_weights(path: str) -> dict:
    """The arrays of a safetensors file; a damaged or truncated file is a one-line ValueError
    naming it (safetensors' own error is a traceback-shaped SafetensorError)."""
    try:
        return load_file(path)
    except Exception as exc:  # SafetensorError, OSError on a truncated header, ...
        raise ValueError(
            f"{path}: cannot read the weights ({type(exc).__name__}: {exc}); the file is "
            "damaged or truncated"
        ) from None


def read_header_shapes(path: str) -> dict:
    """name -> shape of every tensor in a safetensors file, read from its header alone (no data)."""
    try:
        with safe_open(path, framework="numpy") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except Exception as exc:  # SafetensorError, OSError on a truncated header, ...
        raise ValueError(
            f"{path}: cannot read the weights ({type(exc).__name__}: {exc}); the file is "
            "damaged or truncated"
        ) from None


def unique_state(model) -> dict:
    """name -> array of every parameter and persistent buffer, tied ones once (first name)."""
    out, seen = {}, set()
    for name, value in model._state_items():
        if id(value) in seen:
            continue
        seen.add(id(value))
        out[name] = np.ascontiguousarray(getattr(value, "data", value))
    return out
