"""Scaled dot-product attention (Vaswani et al., 2017, eq. 1), with PyTorch's semantics.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V

Shape letters — the one glossary for the whole project (models, nn, native/, csrc/ use these):

    B   batch size                       T   tokens in a sequence (a model's input length)
    C   model width (d_model, BERT's hidden_size)        H   attention heads
    N   queries in one attention call    M   keys (and values) in it; N = M = T in self-attention
    D   size of one query/key head (C / H; PyTorch's docs call it E)     Dv  of one value head
    V   vocabulary size                  (PyTorch's SDPA docs write L, S, E, Ev for N, M, D, Dv)

Shapes (any number of leading batch axes, usually (B, H)):

    q: (..., N, D)   N queries of size D          k: (..., M, D)   M keys
    v: (..., M, Dv)  one value per key             out: (..., N, Dv)

Every query takes a weighted average of the values; the weights softmax(q . k / sqrt(D)) say how
well the query matches each key. Dividing by sqrt(D) keeps the dot products at unit variance for
unit-variance q and k, so the softmax does not saturate as D grows.

Masks (``attn_mask`` broadcasts against (..., N, M), e.g. (N, M) or (B, 1, N, M)):

* boolean: True means "may attend" (PyTorch's SDPA convention). NOTE: ``nn.MultiheadAttention``
  follows PyTorch's *opposite* convention for its boolean ``attn_mask``/``key_padding_mask``
  (True = "ignore"); see ``numtrans/nn/attention.py``.
* float: added to the scores (0 = keep, -inf = forbid, anything else = a bias such as ALiBi).
* ``is_causal=True``: query i sees keys j <= i (top-left aligned when N != M, like PyTorch).
  Passing both ``attn_mask`` and ``is_causal`` raises, like PyTorch's reference implementation.

A query whose keys are all masked has no meaningful softmax. Here its output row is zeros and its
gradients are zeros (the engine's softmax returns 0 for an all -inf row), never NaN; PyTorch's
fused kernels do the same. ``dropout_p`` drops attention weights (always applied when > 0: modules
pass 0 in eval mode).

``scaled_dot_product_attention`` is also the one place where the native fused kernels are
dispatched from (``backend=``; see ``_dispatch.py``). The NumPy path below is the reference.
"""

from __future__ import annotations

import math

import numpy as np

from ..ops.arithmetic import as_tensor
from ..tensor import Tensor, make_result
from . import _dispatch
from .activations import softmax
from .layers import dropout

__all__ = ["attention_weights", "causal_mask", "contiguous", "scaled_dot_product_attention"]


def contiguous(x: Tensor) -> Tensor:
    """The same values in C order (identity for the gradient). Why: after splitting heads,
    q, k, v are strided views, and NumPy's batched matmul only calls BLAS when each matrix is
    laid out contiguously; otherwise it falls back to a loop up to 100x slower."""
    if x.data.flags.c_contiguous:
        return x
    return make_result(np.ascontiguousarray(x.data), (x,), lambda g: (g,), "contiguous")


def causal_mask(N: int, M: int | None = None, offset: int = 0) -> np.ndarray:
    """Boolean (N, M) mask, True where query i may see key j: j <= i + offset.

    ``offset=0`` is PyTorch's top-left alignment. With a KV cache holding ``offset`` earlier
    positions, the N new queries sit at positions offset..offset+N-1, so ``offset`` aligns them.
    """
    M = N if M is None else M
    return np.arange(M)[None, :] <= np.arange(N)[:, None] + offset


def _check_shapes(q, k, v) -> None:
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(
            f"attention needs q, k, v with at least 2 dims (..., N, D); got {q.shape}, {k.shape}, {v.shape}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same last dim: q {q.shape}, k {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys: k {k.shape}, v {v.shape}")


def attention_weights(q, k, attn_mask=None, is_causal: bool = False, scale=None) -> Tensor:
    """softmax(q k^T * scale + mask) over the keys: the (..., N, M) attention probabilities."""
    if is_causal and attn_mask is not None:
        raise ValueError("pass either attn_mask or is_causal=True, not both (as in PyTorch)")
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    q, k = contiguous(q), contiguous(k)
    # Scale q before the product: same result, but (N, D) multiplies instead of (N, M).
    scores = (q * scale) @ k.transpose(-2, -1)  # (..., N, M)
    N, M = scores.shape[-2], scores.shape[-1]
    if is_causal:
        blocked = ~causal_mask(N, M)  # masked_fill fills where True: the blocked positions
        scores = scores.masked_fill(blocked, -np.inf)
    elif attn_mask is not None:
        mask_data = np.asarray(getattr(attn_mask, "data", attn_mask))
        if mask_data.dtype == bool:
            # True = may attend, so the positions to fill are the False ones.
            allowed = np.broadcast_to(mask_data, np.broadcast_shapes(mask_data.shape, scores.shape))
            if allowed.shape != scores.shape:
                scores = scores.expand(allowed.shape)
            scores = scores.masked_fill(~allowed, -np.inf)
        elif np.issubdtype(mask_data.dtype, np.floating):
            mask = attn_mask if isinstance(attn_mask, Tensor) else as_tensor(mask_data)
            if mask.dtype != scores.dtype:  # a float32 mask must not upcast float64 scores, etc.
                mask = mask.astype(scores.dtype)
            scores = scores + mask
        else:
            raise TypeError(f"attn_mask must be boolean or floating, got dtype {mask_data.dtype}")
    return softmax(scores, dim=-1)  # all -inf rows give 0, not NaN


def scaled_dot_product_attention(
    q,
    k,
    v,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale=None,
    backend: str = "auto",
) -> Tensor:
    """softmax(q k^T / sqrt(D) + mask) v: (..., N, D), (..., M, D), (..., M, Dv) -> (..., N, Dv).

    ``scale`` replaces 1/sqrt(D). ``backend``: "auto" (default), "numpy", "cpu" or "cuda".
    """
    _check_shapes(q, k, v)
    if is_causal and attn_mask is not None:
        raise ValueError("pass either attn_mask or is_causal=True, not both (as in PyTorch)")
    chosen = _dispatch.resolve_backend(backend, dropout_p, getattr(q, "dtype", None))
    if chosen != "numpy":
        return _dispatch.native_attention(q, k, v, attn_mask, is_causal, scale, chosen)
    p = attention_weights(q, k, attn_mask, is_causal, scale)  # (..., N, M)
    if dropout_p > 0.0:
        p = dropout(p, dropout_p, training=True)
    return p @ contiguous(v)
