"""Save and load models without pickle: ``config.json`` + ``model.safetensors``.

    model.save_pretrained("out/")          # out/config.json, out/model.safetensors
    model = GPT.from_pretrained("out/")    # the same class, config and weights, exactly

Why not pickle: unpickling runs arbitrary code from the file. safetensors is a flat, documented
format (a JSON header with names, dtypes and shapes, then the raw bytes), read here through the
``safetensors`` package's NumPy API. ``config.json`` holds the model's config dataclass and the
class name, so the right architecture is rebuilt before the weights are loaded.

Files are written atomically (to a temporary file in the same directory, then ``os.replace``):
an interrupted save never leaves a half-written checkpoint behind. A tied parameter (e.g. GPT's
``lm_head.weight`` = ``transformer.wte.weight``) is stored once, under its first name.
Loading refuses a file whose tensors do not match the config, naming the tensor.
A Hugging Face directory (its config.json has ``model_type``) is converted by ``hf.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from ..io import atomic_write, read_json_object  # noqa: F401 (atomic_write: hf.py uses it)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def read_weights(path: str) -> dict:
    """The arrays of a safetensors file; a damaged or truncated file is a one-line ValueError
    naming it (safetensors' own error is a traceback-shaped SafetensorError)."""
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except Exception as exc:  # SafetensorError, OSError on a truncated header, ...
        raise ValueError(
            f"{path}: cannot read the weights ({type(exc).__name__}: {exc}); the file is "
            "damaged or truncated"
        ) from None


def config_from_dict(config_class, values: dict):
    """Build ``config_class(**values)``; unknown keys are an error that names them."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{config_class.__name__} has no field(s) {unknown}")
    return config_class(**values)


def unique_state(model) -> dict:
    """name -> array of every parameter and persistent buffer, tied ones once (first name)."""
    out, seen = {}, set()
    for name, value in model._state_items():
        if id(value) in seen:
            continue
        seen.add(id(value))
        out[name] = np.ascontiguousarray(getattr(value, "data", value))
    return out


def check_tensors(model, tensors: dict, source: str) -> None:
    """Raise ValueError naming every missing, unexpected or mis-shaped tensor."""
    groups = {}  # id -> (names, expected shape): a tied parameter may appear under any name
    for name, value in model._state_items():
        groups.setdefault(id(value), ([], value.shape))[0].append(name)
    problems, expected_names = [], set()
    for names, shape in groups.values():
        expected_names.update(names)
        present = [n for n in names if n in tensors]
        if not present:
            problems.append(f"missing tensor {names[0]!r} (shape {shape})")
        for n in present:
            if tuple(tensors[n].shape) != tuple(shape):
                problems.append(
                    f"tensor {n!r} has shape {tuple(tensors[n].shape)} but the config "
                    f"expects {tuple(shape)}"
                )
    problems += [f"unexpected tensor {n!r}" for n in tensors if n not in expected_names]
    if problems:
        raise ValueError(f"{source} does not match the model's config:\n  " + "\n  ".join(problems))


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to a model with ``self.config``
    (a dataclass) and a class attribute ``config_class``."""

    config_class = None

    def save_pretrained(self, directory: str) -> None:
        from safetensors.numpy import save_file

        os.makedirs(directory, exist_ok=True)
        config = {"architecture": type(self).__name__, **dataclasses.asdict(self.config)}
        text = json.dumps(config, indent=2, sort_keys=True) + "\n"

        def write_config(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)

        tensors = unique_state(self)
        atomic_write(os.path.join(directory, WEIGHTS_NAME), lambda tmp: save_file(tensors, tmp))
        atomic_write(os.path.join(directory, CONFIG_NAME), write_config)

    @classmethod
    def from_pretrained(cls, directory: str):

        if not os.path.isdir(directory):
            raise FileNotFoundError(f"no such model directory: {directory!r}")
        config_path = os.path.join(directory, CONFIG_NAME)
        weights_path = os.path.join(directory, WEIGHTS_NAME)
        if not os.path.isfile(config_path):
            raise FileNotFoundError(f"missing {CONFIG_NAME} in {directory!r}")
        values = read_json_object(config_path, "expected a JSON object")
        if "architecture" not in values and "model_type" in values:  # a Hugging Face checkpoint
            from .hf import load_hf_pretrained

            return load_hf_pretrained(cls, directory)
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f"missing {WEIGHTS_NAME} in {directory!r}")
        architecture = values.pop("architecture", cls.__name__)
        if architecture != cls.__name__:
            raise ValueError(
                f"{directory!r} holds a {architecture}, not a {cls.__name__}; "
                f"load it with {architecture}.from_pretrained"
            )
        config = config_from_dict(cls.config_class, values)
        tensors = read_weights(weights_path)
        model = cls(config)
        check_tensors(model, tensors, weights_path)
        floats = [a.dtype for a in tensors.values() if np.issubdtype(a.dtype, np.floating)]
        if floats:
            model.to(floats[0])  # restore exactly: keep the file's precision
        model.load_state_dict(tensors, strict=True)
        model.eval()
        return model
