"""Positional information. Attention itself is blind to order (permuting the tokens permutes
the output), so the position of each token has to be put in explicitly.

1. Sinusoidal encoding (Vaswani et al., 2017, section 3.5), added to the embeddings:

       PE(pos, 2i)   = sin(pos / 10000^(2i / d_model))
       PE(pos, 2i+1) = cos(pos / 10000^(2i / d_model))

   Each pair of channels is a clock turning at its own speed, from 2 pi (fast) to 10000 * 2 pi
   radians per period (slow). PE(pos + k) is a fixed rotation of PE(pos), which makes relative
   offsets easy to express. Nothing is learned; the table is a non-persistent buffer.

2. Learned absolute positions (BERT, GPT-2): a trainable (max_len, d_model) table, row ``pos``
   added to the token at position ``pos``.

3. Rotary embeddings, RoPE (Su et al., 2021; GPT-NeoX, LLaMA): instead of adding anything to x,
   rotate each query and key inside attention. Channel pairs (j, j + hs/2) of a head of size hs
   are rotated by the angle pos * theta_j, theta_j = base^(-2j / hs):

       rope(x, pos) = x * cos(pos theta) + rotate_half(x) * sin(pos theta),
       rotate_half([x1, x2]) = [-x2, x1]                (x1, x2: the two halves of the head)

   A rotation preserves lengths, and <rope(q, m), rope(k, n)> depends only on q, k and m - n:
   attention scores see relative positions. This is the "half-split" layout of GPT-NeoX / LLaMA
   (Hugging Face); the original RoFormer paper pairs adjacent channels (2j, 2j+1) instead.

Shapes: x (B, T, C) for 1 and 2; q, k (B, H, T, hs) for RoPE. ``offset`` is the position of the
first token, used with a KV cache (the new tokens come after ``offset`` cached ones).
"""

from __future__ import annotations

import numpy as np

from ..functional.layers import dropout as dropout_fn
from ..tensor import Tensor, get_default_dtype, make_result
from . import init
from .module import Module, Parameter


def _check_length(offset: int, T: int, max_len: int, what: str) -> None:
    if offset + T > max_len:
        raise ValueError(
            f"{what}: positions up to {offset + T - 1} requested, max_len is {max_len}"
        )


def sinusoidal_encoding(max_len: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    """The (max_len, d_model) table of "Attention Is All You Need", in float64."""
    pos = np.arange(max_len, dtype=np.float64)[:, None]  # (max_len, 1)
    two_i = np.arange(0, d_model, 2, dtype=np.float64)  # 2i = 0, 2, 4, ...
    angle = pos / base ** (two_i / d_model)  # (max_len, ceil(d_model / 2))
    pe = np.zeros((max_len, d_model))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : d_model // 2])  # odd d_model: one cosine fewer
    return pe


class SinusoidalPositionalEncoding(Module):
    """x + PE[offset : offset + T], then dropout. x: (B, T, d_model)."""

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, dtype=None):
        super().__init__()
        self.d_model, self.max_len, self.p = d_model, max_len, dropout
        pe = sinusoidal_encoding(max_len, d_model).astype(dtype or get_default_dtype())
        self.register_buffer("pe", pe, persistent=False)  # recomputed, never saved

    def forward(self, x, offset: int = 0):
        T = x.shape[-2]
        _check_length(offset, T, self.max_len, "SinusoidalPositionalEncoding")
        out = x + self.pe[offset : offset + T].astype(x.dtype, copy=False)
        return dropout_fn(out, self.p, self.training)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(Module):
    """x + weight[offset : offset + T] with a trained table (GPT-2 / BERT), init N(0, 0.02^2)."""

    def __init__(self, max_len: int, d_model: int, dtype=None):
        super().__init__()
        self.max_len, self.d_model = max_len, d_model
        self.weight = Parameter(np.empty((max_len, d_model), dtype=dtype or get_default_dtype()))
        init.normal_(self.weight, std=0.02)

    def forward(self, x, offset: int = 0):
        T = x.shape[-2]
        _check_length(offset, T, self.max_len, "LearnedPositionalEmbedding")
        return x + self.weight[offset : offset + T]

    def extra_repr(self) -> str:
        return f"{self.max_len}, {self.d_model}"


def rotate_half(x: np.ndarray) -> np.ndarray:
    """[x1, x2] -> [-x2, x1] on the last axis (a 90 degree turn of every channel pair)."""
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rotary(x: Tensor, cos: np.ndarray, sin: np.ndarray) -> Tensor:
    """y = x cos + rotate_half(x) sin, one fused op. x: (..., T, hs); cos, sin: (T, hs).

    rotate_half is linear with transpose u -> [u2, -u1] (= -rotate_half(u)), so
    dL/dx = g cos - rotate_half(g sin)."""
    out = x.data * cos + rotate_half(x.data) * sin

    def backward(g):
        return (g * cos - rotate_half(g * sin),)

    return make_result(out.astype(x.dtype, copy=False), (x,), backward, "rotary")


class RotaryEmbedding(Module):
    """Rotate queries and keys by their positions. ``forward(q, k, offset)`` -> (q, k)."""

    def __init__(self, head_dim: int, max_len: int = 2048, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head size, got {head_dim}")
        self.head_dim, self.max_len, self.base = head_dim, max_len, base
        theta = base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)  # (hs/2,)
        angles = np.arange(max_len, dtype=np.float64)[:, None] * theta  # (max_len, hs/2)
        angles = np.concatenate([angles, angles], axis=-1)  # same angle for j and j + hs/2
        self.register_buffer("cos", np.cos(angles), persistent=False)
        self.register_buffer("sin", np.sin(angles), persistent=False)

    def forward(self, q, k, offset: int = 0):
        T = q.shape[-2]
        _check_length(offset, T, self.max_len, "RotaryEmbedding")
        cos = self.cos[offset : offset + T].astype(q.dtype, copy=False)
        sin = self.sin[offset : offset + T].astype(q.dtype, copy=False)
        return apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, max_len={self.max_len}, base={self.base}"
