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
import re

import numpy as np
from safetensors.numpy import save_file

from ..io import atomic_write, read_json_object
from .files import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    read_header_shapes,
    read_weights,
    unique_state,
)
from .hf import load_hf_pretrained

# config field -> (tensor name suffix, axis) that must agree before anything is allocated: a
# crafted ``"vocab_size": 100000000`` would otherwise build a 6 GiB model before the shape check.
# A field whose tensor is absent (e.g. no position table with rotary positions) is not checked.
_CONFIG_DIMS = {
    "GPTConfig": {
        "vocab_size": ("wte.weight", 0),
        "n_embd": ("wte.weight", 1),
        "block_size": ("wpe.weight", 0),
    },
    "BertConfig": {
        "vocab_size": ("embeddings.word_embeddings.weight", 0),
        "hidden_size": ("embeddings.word_embeddings.weight", 1),
        "max_position_embeddings": ("embeddings.position_embeddings.weight", 0),
        "type_vocab_size": ("embeddings.token_type_embeddings.weight", 0),
        "intermediate_size": ("layer.0.intermediate.dense.weight", 0),
    },
    "Seq2SeqConfig": {
        "src_vocab_size": ("src_tok_emb.weight", 0),
        "tgt_vocab_size": ("tgt_tok_emb.weight", 0),
        "d_model": ("src_tok_emb.weight", 1),
        "dim_feedforward": ("encoder.layers.0.linear1.weight", 0),
    },
}
# config field -> the block-list prefix whose largest index + 1 is the number of layers
_CONFIG_LAYERS = {
    "GPTConfig": {"n_layer": "h"},
    "BertConfig": {"num_hidden_layers": "encoder.layer"},
    "Seq2SeqConfig": {
        "num_encoder_layers": "encoder.layers",
        "num_decoder_layers": "decoder.layers",
    },
}


def check_config_against_header(config, shapes: dict, source: str) -> None:
    """Refuse a config whose sizes disagree with the weight file's header, before building it."""
    kind = type(config).__name__
    problems = []
    for field, (suffix, axis) in _CONFIG_DIMS.get(kind, {}).items():
        names = [n for n in shapes if n == suffix or n.endswith("." + suffix)]
        if names and len(shapes[names[0]]) > axis:
            found = shapes[names[0]][axis]
            if getattr(config, field) != found:
                problems.append(f"{field}={getattr(config, field)} but {names[0]!r} has {found}")
    for field, prefix in _CONFIG_LAYERS.get(kind, {}).items():
        indices = [_layer_index(n, prefix) for n in shapes]
        indices = [i for i in indices if i is not None]
        if indices and getattr(config, field) != max(indices) + 1:
            problems.append(f"{field}={getattr(config, field)} but the file has {max(indices) + 1}")
    if problems:
        raise ValueError(f"{source}: the config does not match the weights: " + "; ".join(problems))


def _layer_index(name: str, prefix: str):
    """3 for ``("transformer.h.3.attn.c_attn.weight", "h")``; None when ``prefix`` is absent."""
    match = re.search(r"(?:^|\.)" + re.escape(prefix) + r"\.(\d+)\.", name)
    return int(match.group(1)) if match else None


def config_from_dict(config_class, values: dict):
    """Build ``config_class(**values)``; unknown keys are an error that names them."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{config_class.__name__} has no field(s) {unknown}")
    return config_class(**values)


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

    def gradient_checkpointing_enable(self, enable: bool = True) -> None:
        """Hugging Face's switch: recompute each block's activations in the backward instead of
        keeping them (``numtrans.autograd.checkpoint``): memory for one block's activations
        instead of all of them, for about one more forward's time; gradients are unchanged.
        It sets ``gradient_checkpointing`` on every submodule that has one (GPT, BertEncoder)."""
        found = [m for m in self.modules() if hasattr(type(m), "gradient_checkpointing")]
        if not found:
            raise ValueError(f"{type(self).__name__} has no blocks that can be checkpointed")
        for m in found:
            m.gradient_checkpointing = bool(enable)

    def gradient_checkpointing_disable(self) -> None:
        self.gradient_checkpointing_enable(False)

    def save_pretrained(self, directory: str) -> None:
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
            return load_hf_pretrained(cls, directory)
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f"missing {WEIGHTS_NAME} in {directory!r}")
        architecture = values.pop("architecture", cls.__name__)
        if architecture != cls.__name__:
            raise ValueError(
                f"{directory!r} holds a {architecture}, not a {cls.__name__}; "
                f"load it with {architecture}.from_pretrained"
            )
        if "quantization" in values:  # written by numtrans.compress.save_quantized
            raise ValueError(
                f"{directory!r} holds a quantized {architecture} "
                f"({values['quantization'].get('bits')}-bit): load it with "
                f"numtrans.compress.load_quantized({cls.__name__}, ...)"
            )
        config = config_from_dict(cls.config_class, values)
        check_config_against_header(config, read_header_shapes(weights_path), directory)
        tensors = read_weights(weights_path)
        model = cls(config)
        check_tensors(model, tensors, weights_path)
        floats = [a.dtype for a in tensors.values() if np.issubdtype(a.dtype, np.floating)]
        if floats:
            model.to(floats[0])  # restore exactly: keep the file's precision
        model.load_state_dict(tensors, strict=True)
        model.eval()
        return model
