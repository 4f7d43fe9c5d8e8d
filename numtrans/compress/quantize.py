"""Post-training quantization of every ``Linear``: int8 weights and activations, or 4-bit weights.

int8 (the scheme of PyTorch's ``quantize_dynamic`` and LLM.int8's vector-wise quantization):
    weight, per output channel o:   s_w[o] = max_i |W[o, i]| / 127,   Wq = round(W / s_w)  (int8)
    activation, per row r (token):  s_x[r] = max_i |x[r, i]| / 127,   xq = round(x / s_x)
    y[r, o] = s_x[r] * s_w[o] * sum_i xq[r, i] Wq[o, i]  + b[o]       (the sum is an exact int32 GEMM)
Symmetric (zero point 0): the int8 range [-127, 127] is centred on 0, so no zero-point terms.
The activation scales are computed at run time from each input ("dynamic"): no calibration data.

4-bit weight-only, group-wise (GPTQ/AWQ-style storage, round-to-nearest here):
    each row of W is cut into groups of ``group_size`` inputs, s[o, g] = max |W[o, group g]| / 7,
    Wq in [-7, 7], two values packed per byte; the forward dequantizes W and runs a float GEMM
    (memory is what shrinks, not arithmetic).

``quantize(model)`` returns a new model (a deep copy; the original is untouched) whose ``Linear``
layers are ``QuantizedLinear``; ``skip`` keeps chosen layers (fnmatch patterns on dotted names)
in float32. ``save_quantized`` / ``load_quantized`` write and read ``config.json`` (with a
``quantization`` entry) + ``model.safetensors`` (int8 / uint8 tensors and float32 scales).
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import json
import os

import numpy as np

from ..models.pretrained import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    atomic_write,
    check_tensors,
    config_from_dict,
    unique_state,
)
from ..nn.linear import Linear
from ..nn.module import Module, Parameter
from ..tensor import Tensor
from .int8 import QMAX8, int8_linear, pack_int8

QMAX4 = 7


def quantize_weight_int8(w: np.ndarray):
    """W (out, in) float -> (Wq int8 (out, in), scale float32 (out,)), per output channel."""
    amax = np.abs(w).max(axis=1) if w.shape[1] else np.zeros(w.shape[0])
    scale = np.where(amax > 0, amax / QMAX8, 1.0).astype(np.float32)  # all-zero row: any scale
    q = np.clip(np.rint(w / scale[:, None]), -QMAX8, QMAX8).astype(np.int8)
    return q, scale


def quantize_weight_int4(w: np.ndarray, group_size: int):
    """W (out, in) -> (packed uint8 (out, in/2), scale float32 (out, in/group_size))."""
    out_f, in_f = w.shape
    groups = w.reshape(out_f, in_f // group_size, group_size)
    amax = np.abs(groups).max(axis=2)
    scale = np.where(amax > 0, amax / QMAX4, 1.0).astype(np.float32)
    q = np.clip(np.rint(groups / scale[..., None]), -QMAX4, QMAX4).astype(np.int8)
    nibbles = (q.reshape(out_f, in_f) & 0x0F).astype(np.uint8)  # two's complement low nibble
    return (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).astype(np.uint8), scale


def unpack_int4(packed: np.ndarray) -> np.ndarray:
    """uint8 (out, in/2) -> int8 (out, in) in [-8, 7] (sign-extended nibbles)."""
    lo, hi = (packed & 0x0F).astype(np.int8), (packed >> 4).astype(np.int8)
    q = np.empty((packed.shape[0], packed.shape[1] * 2), np.int8)
    q[:, 0::2], q[:, 1::2] = lo, hi
    return np.where(q > 7, q - 16, q).astype(np.int8)


class QuantizedLinear(Module):
    """Drop-in inference replacement of ``Linear``: (..., in_features) -> (..., out_features).

    No gradient flows through it (post-training quantization is for inference). The int8
    weight is also kept packed in the GEMM kernel's layout (``self.packed``, not saved): made by
    ``pack_weight()`` when the layer is quantized or loaded, so no call repacks it. After
    changing ``weight_int8`` by hand, call ``pack_weight()`` again."""

    def __init__(self, in_features, out_features, bias=True, bits=8, group_size=None):
        super().__init__()
        if bits not in (4, 8):
            raise ValueError(f"bits must be 8 or 4, got {bits}")
        self.in_features, self.out_features = in_features, out_features
        self.bits, self.group_size = bits, group_size
        if bits == 8:
            self.register_buffer("weight_int8", np.zeros((out_features, in_features), np.int8))
            self.register_buffer("weight_scale", np.ones(out_features, np.float32))
        else:
            if group_size is None or group_size < 1 or in_features % group_size or group_size % 2:
                raise ValueError(
                    f"group_size {group_size} must be an even divisor of in_features {in_features}"
                )
            self.register_buffer(
                "weight_int4", np.zeros((out_features, in_features // 2), np.uint8)
            )
            self.register_buffer(
                "weight_scale", np.ones((out_features, in_features // group_size), np.float32)
            )
        self.bias = Parameter(np.zeros(out_features, np.float32)) if bias else None
        self.packed = None

    def pack_weight(self) -> QuantizedLinear:
        """Pack W^T (in, out) for the int8 kernel, once (a plain attribute, not a buffer)."""
        if self.bits == 8:
            self.packed = pack_int8(np.ascontiguousarray(self.weight_int8.T))
        return self

    @classmethod
    def from_linear(cls, linear: Linear, bits=8, group_size=None) -> QuantizedLinear:
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, bits, group_size)
        w = linear.weight.data.astype(np.float32)
        if bits == 8:
            q.weight_int8, q.weight_scale = quantize_weight_int8(w)
        else:
            q.weight_int4, q.weight_scale = quantize_weight_int4(w, group_size)
        if linear.bias is not None:
            q.bias = Parameter(linear.bias.data.astype(np.float32).copy())
        return q.pack_weight()

    def dequantized_weight(self) -> np.ndarray:
        """The float32 (out, in) weight the quantized one stands for."""
        if self.bits == 8:
            return self.weight_int8.astype(np.float32) * self.weight_scale[:, None]
        q = unpack_int4(self.weight_int4).astype(np.float32)
        return q * np.repeat(self.weight_scale, self.group_size, axis=1)

    def forward(self, x):
        data = getattr(x, "data", x)
        if data.shape[-1] != self.in_features:
            raise ValueError(
                f"QuantizedLinear: input has {data.shape[-1]} features, expected {self.in_features}"
            )
        x2 = data.reshape(-1, self.in_features).astype(np.float32, copy=False)
        bias = None if self.bias is None else self.bias.data
        if self.bits == 8:
            if self.packed is None:
                self.pack_weight()
            # y = s_x s_w (xq @ Wq^T) + b: row quantization, exact int32 GEMM and rescale in one
            out = int8_linear(x2, self.packed, self.weight_scale, bias)
        else:
            out = x2 @ self.dequantized_weight().T
            if bias is not None:
                out += bias
        return Tensor(out.reshape(data.shape[:-1] + (self.out_features,)).astype(data.dtype))

    def extra_repr(self) -> str:
        g = f", group_size={self.group_size}" if self.bits == 4 else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}{g}"
        )


def _get(root: Module, dotted: str) -> Module:
    for part in dotted.split(".") if dotted else ():
        root = getattr(root, part)
    return root


def _set_child(root: Module, dotted: str, child: Module) -> None:
    parent_name, _, attr = dotted.rpartition(".")
    setattr(_get(root, parent_name), attr, child)


def _linear_names(model: Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, Linear) and n]


def quantize(model: Module, bits: int = 8, group_size: int | None = None, skip=()) -> Module:
    """A quantized deep copy of ``model``: every ``Linear`` not matched by ``skip`` becomes a
    ``QuantizedLinear`` (int8 weights + dynamic int8 activations, or 4-bit weight-only with
    ``group_size`` inputs per scale, default 32)."""
    if bits not in (4, 8):
        raise ValueError(f"bits must be 8 or 4, got {bits}")
    if bits == 8 and group_size is not None:
        raise ValueError("group_size applies to bits=4 only (int8 uses per-channel scales)")
    if bits == 4 and group_size is None:
        group_size = 32
    if any(isinstance(m, QuantizedLinear) for m in model.modules()):
        raise ValueError("the model is already quantized (it contains QuantizedLinear layers)")
    names = _linear_names(model)
    if not names:
        raise ValueError(f"{type(model).__name__} has no Linear layer to quantize")
    skip = tuple(skip)
    chosen = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in skip)]
    if bits == 4:
        for n in chosen:
            width = _get(model, n).in_features
            if width % group_size or group_size % 2:
                raise ValueError(
                    f"group_size {group_size} does not divide the width {width} of layer {n!r}"
                )
    new = copy.deepcopy(model)
    for n in chosen:
        _set_child(new, n, QuantizedLinear.from_linear(_get(new, n), bits, group_size))
    new.quantization = {"bits": bits, "group_size": group_size, "layers": chosen}
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
    tensors = load_file(weights_path)
    check_tensors(model, tensors, weights_path)
    for name, array in tensors.items():  # safetensors keeps dtypes: int8 stays int8
        dtype = next(v for k, v in model._state_items() if k == name)
        if np.asarray(getattr(dtype, "data", dtype)).dtype.kind != array.dtype.kind:
            raise ValueError(f"tensor {name!r} has dtype {array.dtype} in {weights_path}")
    model.load_state_dict(tensors, strict=True)
    for m in model.modules():
        if isinstance(m, QuantizedLinear):
            m.pack_weight()  # the loaded int8 weights, packed once
    model.quantization = info
    model.eval()
    return model
