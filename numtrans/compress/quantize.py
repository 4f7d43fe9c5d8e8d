"""Post-training quantization of a model: ``quantize`` / ``save_quantized`` / ``load_quantized``.

``quantize(model)`` returns a new model (a deep copy; the original is untouched) whose ``Linear``
layers are ``QuantizedLinear`` (int8 weights and dynamic int8 activations, the scheme of
PyTorch's ``quantize_dynamic`` and LLM.int8's vector-wise quantization; or 4-bit weight-only
with group-wise scales) and whose ``Embedding`` tables are ``QuantizedEmbedding`` (int8 rows,
one scale each). The formulas are in ``layers.py``. Symmetric (zero point 0): the int8 range
[-127, 127] is centred on 0, so no zero-point terms; activation scales are computed from each
input at run time, so no calibration data is needed. ``skip`` keeps chosen layers (fnmatch
patterns on dotted names, e.g. ``"encoder.layer.5.*"``) in float32.

A tied weight (GPT's ``lm_head.weight`` is ``wte.weight``) stays tied: the embedding's per-row
scales are exactly the output layer's per-channel scales, so both layers share one int8 table.
With ``bits=4`` the tied table is stored 4-bit, group-wise (the layout of the output layer's
weight), once: the embedding looks rows up in the same packed bytes the output layer multiplies.

``save_quantized`` / ``load_quantized`` write and read ``config.json`` (the config with a
``quantization`` entry) + ``model.safetensors`` (int8 / uint8 tensors and float32 scales).
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import json
import os

import numpy as np

from ..io import atomic_write
from ..models.files import CONFIG_NAME, WEIGHTS_NAME, unique_state
from ..models.pretrained import check_tensors, config_from_dict
from ..nn.embedding import Embedding
from ..nn.linear import Linear
from ..nn.module import Module
from .layers import QuantizedEmbedding, QuantizedLinear


def _get(root: Module, dotted: str) -> Module:
    for part in dotted.split(".") if dotted else ():
        root = getattr(root, part)
    return root


def _set_child(root: Module, dotted: str, child: Module) -> None:
    parent_name, _, attr = dotted.rpartition(".")
    setattr(_get(root, parent_name), attr, child)


def _names(model: Module, kind) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, kind) and n]


def _ties(model: Module, linears, embeddings) -> list[list[str]]:
    """[linear, embedding] pairs whose weight is one Parameter (e.g. lm_head and wte)."""
    owner = {id(_get(model, e).weight): e for e in embeddings}
    return [
        [n, owner[id(_get(model, n).weight)]] for n in linears if id(_get(model, n).weight) in owner
    ]


def _share(linear: QuantizedLinear, emb: QuantizedEmbedding) -> None:
    """Make ``linear`` use the embedding's int8 (or 4-bit) table and scales (the same arrays)."""
    table = "weight_int8" if linear.bits == 8 else "weight_int4"
    if emb.bits != linear.bits or table not in emb._buffers:
        raise ValueError(f"a tied {linear.bits}-bit layer needs a {linear.bits}-bit embedding")
    linear._buffers[table] = emb._buffers[table]
    linear._buffers["weight_scale"] = emb._buffers["weight_scale"]  # (int8: already packed
    # from the same values, since the weight was one Parameter)


def quantize(
    model: Module, bits: int = 8, group_size: int | None = None, skip=(), embeddings: bool = True
) -> Module:
    """A quantized deep copy of ``model``: every ``Linear`` not matched by ``skip`` becomes a
    ``QuantizedLinear`` (int8 weights + dynamic int8 activations, or 4-bit weight-only with
    ``group_size`` inputs per scale, default 32) and, with ``embeddings``, every ``Embedding``
    a ``QuantizedEmbedding`` (int8 rows, whatever ``bits`` is)."""
    if bits not in (4, 8):
        raise ValueError(f"bits must be 8 or 4, got {bits}")
    if bits == 8 and group_size is not None:
        raise ValueError("group_size applies to bits=4 only (int8 uses per-channel scales)")
    if bits == 4 and group_size is None:
        group_size = 32
    if getattr(model, "quantization", None) is not None or any(
        isinstance(m, (QuantizedLinear, QuantizedEmbedding)) for m in model.modules()
    ):
        raise ValueError("the model is already quantized (it contains quantized layers)")
    names = _names(model, Linear)
    if not names:
        raise ValueError(f"{type(model).__name__} has no Linear layer to quantize")
    skip = tuple(skip)

    def chosen(candidates):
        return [n for n in candidates if not any(fnmatch.fnmatchcase(n, p) for p in skip)]

    linears = chosen(names)
    tables = chosen(_names(model, Embedding)) if embeddings else []
    if bits == 4:
        for n in linears:
            width = _get(model, n).in_features
            if width % group_size or group_size % 2:
                raise ValueError(
                    f"group_size {group_size} does not divide the width {width} of layer {n!r}"
                )
    ties = _ties(model, linears, tables)
    tied_tables = {emb for _, emb in ties}
    new = copy.deepcopy(model)
    for n in tables:  # int8 rows, or the 4-bit layout of the output layer tied to it
        b, g = (bits, group_size) if n in tied_tables else (8, None)
        _set_child(new, n, QuantizedEmbedding.from_embedding(_get(new, n), b, g))
    for n in linears:
        _set_child(new, n, QuantizedLinear.from_linear(_get(new, n), bits, group_size))
    for lin, emb in ties:
        _share(_get(new, lin), _get(new, emb))
    new.quantization = {
        "bits": bits,
        "group_size": group_size,
        "layers": linears,
        "embeddings": tables,
        "tied": ties,
    }
    new.eval()
    return new


def save_quantized(model: Module, directory: str) -> None:
    """``config.json`` (the model's config + a ``quantization`` entry) + ``model.safetensors``."""
    from safetensors.numpy import save_file

    info = getattr(model, "quantization", None)
    if info is None:
        raise ValueError("the model is not quantized; use save_pretrained")
    os.makedirs(directory, exist_ok=True)
    config = {"architecture": type(model).__name__, **dataclasses.asdict(model.config)}
    config["quantization"] = info
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    tensors = unique_state(model)
    atomic_write(os.path.join(directory, WEIGHTS_NAME), lambda tmp: save_file(tensors, tmp))

    def write_config(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(os.path.join(directory, CONFIG_NAME), write_config)


def stored_dtypes(path: str) -> dict:
    """name -> dtype string ("F32", "I8", ...) from a safetensors header, without reading data."""
    import struct

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}


def check_float_directory(directory: str) -> None:
    """One line if ``directory`` is not a float model to quantize: it is quantized already
    (config.json has a ``quantization`` entry), or its weights are int8 beside a float config."""
    config_path = os.path.join(directory, CONFIG_NAME)
    weights_path = os.path.join(directory, WEIGHTS_NAME)
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"missing {CONFIG_NAME} in {directory!r}")
    with open(config_path, encoding="utf-8") as f:
        values = json.load(f)
    if isinstance(values, dict) and values.get("quantization") is not None:
        bits = values["quantization"].get("bits")
        raise ValueError(
            f"{directory!r} is already quantized ({bits}-bit); quantize its float original"
        )
    if os.path.isfile(weights_path):
        ints = [k for k, d in stored_dtypes(weights_path).items() if d in ("I8", "U8")]
        if ints:
            raise ValueError(
                f"{weights_path} holds int8 tensors (e.g. {ints[0]!r}) but config.json describes "
                f"a float model: the weights and the config do not belong together"
            )


def _check_kinds(model: Module, tensors: dict, path: str) -> None:
    """One line when the file's integer / float tensors are not the ones the config describes
    (e.g. int8 weights beside a float config, or float weights beside an int8 config)."""
    expected = {k: np.asarray(getattr(v, "data", v)).dtype for k, v in model._state_items()}
    for name, array in tensors.items():  # safetensors keeps dtypes: int8 stays int8
        if name in expected and expected[name].kind != array.dtype.kind:
            raise ValueError(
                f"tensor {name!r} in {path} is {array.dtype} but config.json describes "
                f"{expected[name]}: the weights and the config do not belong together"
            )
    ints = [n for n, d in expected.items() if d == np.int8]
    if ints and not any(n in tensors for n in ints):
        raise ValueError(
            f"{path} holds no int8 tensors but config.json describes a quantized model"
        )


def load_quantized(cls, directory: str) -> Module:
    """Rebuild a model saved by ``save_quantized``: ``cls(config)``, the same layers replaced by
    ``QuantizedLinear``, then the int8 tensors and scales loaded exactly."""
    from safetensors.numpy import load_file

    config_path = os.path.join(directory, CONFIG_NAME)
    weights_path = os.path.join(directory, WEIGHTS_NAME)
    for path in (config_path, weights_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"missing {os.path.basename(path)} in {directory!r}")
    with open(config_path, encoding="utf-8") as f:
        values = json.load(f)
    info = values.pop("quantization", None)
    if info is None:
        raise ValueError(
            f"{directory!r} holds a float model, not a quantized one; use {cls.__name__}.from_pretrained"
        )
    architecture = values.pop("architecture", cls.__name__)
    if architecture != cls.__name__:
        raise ValueError(f"{directory!r} holds a quantized {architecture}, not a {cls.__name__}")
    model = cls(config_from_dict(cls.config_class, values))
    for n in info["layers"]:
        lin = _get(model, n)
        if not isinstance(lin, Linear):
            raise ValueError(f"layer {n!r} of the saved quantized model is not a Linear here")
        q = QuantizedLinear(
            lin.in_features,
            lin.out_features,
            lin.bias is not None,
            info["bits"],
            info["group_size"],
        )
        _set_child(model, n, q)
    tied_tables = {e for _, e in info.get("tied", [])}
    for n in info.get("embeddings", []):
        emb = _get(model, n)
        if not isinstance(emb, Embedding):
            raise ValueError(f"layer {n!r} of the saved quantized model is not an Embedding here")
        b, g = (info["bits"], info["group_size"]) if n in tied_tables else (8, None)
        _set_child(
            model,
            n,
            QuantizedEmbedding(emb.num_embeddings, emb.embedding_dim, emb.padding_idx, b, g),
        )
    for lin, emb in info.get("tied", []):
        _share(_get(model, lin), _get(model, emb))
    tensors = load_file(weights_path)
    _check_kinds(model, tensors, weights_path)
    check_tensors(model, tensors, weights_path)
    model.load_state_dict(tensors, strict=True)
    for m in model.modules():
        if isinstance(m, QuantizedLinear):
            m.pack_weight()  # the loaded int8 weights, packed once
    model.quantization = info
    model.eval()
    return model
