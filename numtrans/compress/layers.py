"""The quantized layers: ``QuantizedLinear`` and ``QuantizedEmbedding`` (inference only).

int8 weights (per output channel o, or per embedding row o):
    s_w[o] = max_i |W[o, i]| / 127,   Wq = clip(round(W / s_w), -127, 127)   (int8)
int8 activations (QuantizedLinear, per row r, i.e. per token, at run time: "dynamic"):
    s_x[r] = max_i |x[r, i]| / 127,   xq = clip(round(x / s_x), -127, 127)
    y[r, o] = s_x[r] * s_w[o] * sum_i xq[r, i] Wq[o, i] + b[o]   (the sum is an exact int32 GEMM)
4-bit weights (QuantizedLinear, bits=4): each row cut into groups of ``group_size`` inputs,
    s[o, g] = max |W[o, group g]| / 7, Wq in [-7, 7], two values packed per byte; the forward
    dequantizes W and runs a float GEMM (memory is what shrinks, not arithmetic).
An embedding is a table lookup, not a product: QuantizedEmbedding returns Wq[ids] * s_w[ids]
(int8 rows; 4-bit group-wise rows for a table tied to a 4-bit output layer).
"""

from __future__ import annotations

import numpy as np

from ..nn.embedding import Embedding
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
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
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


class QuantizedEmbedding(Module):
    """Drop-in inference replacement of ``Embedding``: ids (...) -> (..., embedding_dim) float32.

    Row v of the table is stored as int8 with its own scale (the per-row form of the per-channel
    weight scale): the vocabulary table, most of a small BERT's bytes, shrinks 4x. ``bits=4``
    stores rows as a 4-bit ``QuantizedLinear`` stores its weight (groups of ``group_size``, two
    values a byte): ``quantize`` uses it for a table tied to a 4-bit output layer, so that the
    two share one packed table, as int8 ones do."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, bits=8, group_size=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx, self.bits, self.group_size = padding_idx, bits, group_size
        V, C = num_embeddings, embedding_dim
        if bits == 8:
            self.register_buffer("weight_int8", np.zeros((V, C), np.int8))
            self.register_buffer("weight_scale", np.ones(V, np.float32))
        elif bits == 4:
            if group_size is None or group_size < 1 or C % group_size or group_size % 2:
                raise ValueError(
                    f"group_size {group_size} must be an even divisor of embedding_dim {C}"
                )
            self.register_buffer("weight_int4", np.zeros((V, C // 2), np.uint8))
            self.register_buffer("weight_scale", np.ones((V, C // group_size), np.float32))
        else:
            raise ValueError(f"bits must be 8 or 4, got {bits}")

    @classmethod
    def from_embedding(cls, emb: Embedding, bits=8, group_size=None) -> QuantizedEmbedding:
        q = cls(emb.num_embeddings, emb.embedding_dim, emb.padding_idx, bits, group_size)
        w = emb.weight.data.astype(np.float32)
        if bits == 8:
            q.weight_int8, q.weight_scale = quantize_weight_int8(w)
        else:
            q.weight_int4, q.weight_scale = quantize_weight_int4(w, group_size)
        return q

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        """Dequantized rows idx (n,) -> (n, C): only the rows looked up are unpacked."""
        if self.bits == 8:
            return self.weight_int8[idx].astype(np.float32) * self.weight_scale[idx][:, None]
        q = unpack_int4(self.weight_int4[idx]).astype(np.float32)
        return q * np.repeat(self.weight_scale[idx], self.group_size, axis=1)

    def dequantized_weight(self) -> np.ndarray:
        return self._rows(np.arange(self.num_embeddings))

    def forward(self, ids):
        idx = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
        rows = self._rows(idx.reshape(-1))
        return Tensor(rows.reshape(idx.shape + (self.embedding_dim,)))

    def extra_repr(self) -> str:
        g = f", group_size={self.group_size}" if self.bits == 4 else ""
        return f"{self.num_embeddings}, {self.embedding_dim}, int{self.bits}{g}"
