"""The layer ops that modules are built from, each with a fused backward.

linear       y = x W^T + b                      x: (..., in), W: (out, in), b: (out,)
embedding    y = W[ids]                         ids: (...) int, W: (vocab, dim) -> (..., dim)
layer_norm   y = (x - mean) / sqrt(var + eps) * w + b   over the last ``len(normalized_shape)`` axes
dropout      y = x * mask / (1 - p), mask ~ Bernoulli(1 - p), only in training
"""

from __future__ import annotations

import math

import numpy as np

from .. import backends
from .. import random as nt_random
from ..ops.arithmetic import as_float, as_tensor
from ..tensor import make_result


def linear(x, weight, bias=None):
    """y = x @ W^T + b.  dx = g @ W,  dW = g^T x (summed over all leading axes),  db = sum g."""
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the weight "
            f"expects {weight.shape[-1]} (weight shape {weight.shape})"
        )
    x2 = x.data.reshape(-1, x.shape[-1])  # fold (B, T, in) into rows: one big GEMM
    # np.dot runs the same BLAS GEMM as `@` with less per-call overhead, which is most of the
    # cost when decoding one token at a time.
    out = np.dot(x2, weight.data.T)
    if bias is not None:
        out += bias.data
    out = out.reshape(x.shape[:-1] + (weight.shape[0],))

    def backward(g):
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g2 @ weight.data).reshape(x.shape) if x.requires_grad else None
        gw = (g2.T @ x2) if weight.requires_grad else None
        if bias is None:
            return gx, gw
        # db = 1^T g, the column sums, as a BLAS matrix-vector product: it reads g once, about
        # twice as fast as g2.sum(axis=0) on the GPT step's (4096, n) gradients
        ones = np.ones(g2.shape[0], dtype=g2.dtype)
        return gx, gw, (ones @ g2 if bias.requires_grad else None)

    parents = (x, weight) if bias is None else (x, weight, bias)
    return make_result(out, parents, backward, "linear")


def embedding_textbook(ids, weight, padding_idx: int | None = None):
    """Row lookup with the plain scatter-add backward: ``np.add.at(grad, ids, g)`` adds each
    position's gradient row into its token's row, one at a time. ``embedding`` below sums the
    same rows by sorting the ids (several times faster); tests check they agree."""
    idx = np.asarray(getattr(ids, "data", ids))
    out = weight.data[idx]  # (..., C)

    def backward(g):
        grad = np.zeros_like(weight.data)  # (V, C)
        np.add.at(grad, idx.reshape(-1), g.reshape(-1, weight.shape[1]))
        if padding_idx is not None:
            grad[padding_idx] = 0
        return (grad,)

    return make_result(out, (weight,), backward, "embedding")


def layer_norm_textbook(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """LayerNorm as the paper writes it, built from Tensor ops so autograd derives the backward:
    (x - mean) / sqrt(var + eps) * w + b over the last axes (biased variance). ``layer_norm``
    below is the same with a hand-written backward and fewer temporaries (tests check)."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    mu = x.mean(dim=axes, keepdim=True)
    var = ((x - mu) * (x - mu)).mean(dim=axes, keepdim=True)
    out = (x - mu) / (var + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def embedding(ids, weight, padding_idx: int | None = None):
    """Look up rows of ``weight``. Backward: scatter-add g into the rows that were used
    (a token used twice gets both gradients); the ``padding_idx`` row gets none."""
    idx = np.asarray(getattr(ids, "data", ids))
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"embedding ids must be integers, got dtype {idx.dtype}")
    vocab = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= vocab):
        bad = idx.max() if idx.max() >= vocab else idx.min()
        raise IndexError(f"token id {bad} is out of range for an embedding of {vocab} rows")
    out = weight.data[idx]

    def backward(g):
        grad = np.zeros_like(weight.data)
        flat, g2 = idx.reshape(-1), g.reshape(-1, weight.shape[1])
        if flat.size:
            # Sum the rows of g per token id: sort by id, then one reduceat over each run of
            # equal ids (several times faster than np.add.at, which adds row by row).
            order = np.argsort(flat, kind="stable")
            ids = flat[order]
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            grad[ids[starts]] = np.add.reduceat(g2[order], starts, axis=0)
        if padding_idx is not None:
            grad[padding_idx] = 0
        return (grad,)

    return make_result(out, (weight,), backward, "embedding")


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """LayerNorm (Ba et al., 2016) over the last axes given by ``normalized_shape``.

    With xhat = (x - mu) * rstd, rstd = 1 / sqrt(var + eps) (biased variance), n normalised elements:
        dxhat = g * w
        dx    = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        dw    = sum over leading axes of g * xhat,   db = sum over leading axes of g
    """
    x = as_float(x)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[-len(shape) :]) != shape:
        raise ValueError(f"layer_norm: input shape {x.shape} does not end with {shape}")
    fused = backends.fused_layers(x.dtype)
    if fused is not None and all(p is None or p.dtype == x.dtype for p in (weight, bias)):
        return fused.layer_norm(x, shape, weight, bias, eps)  # one C++ pass per row each way
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    lead = tuple(range(x.ndim - len(shape)))
    xd = x.data
    inv_n = 1.0 / math.prod(shape)  # sum * (1/n): ndarray.mean adds ~10 us per call in Python
    mu = xd.sum(axis=axes, keepdims=True) * inv_n
    xhat = xd - mu  # centred; scaled in place below (one full-size temporary, not three)
    var = np.square(xhat).sum(axis=axes, keepdims=True) * inv_n
    rstd = 1.0 / np.sqrt(var + eps)
    xhat *= rstd
    out = xhat if weight is None else xhat * weight.data
    if bias is not None:
        out = out + bias.data if weight is None else np.add(out, bias.data, out=out)

    def backward(g):
        dxhat = g if weight is None else g * weight.data
        gx = None
        if x.requires_grad:
            m1 = dxhat.sum(axis=axes, keepdims=True) * inv_n
            t = dxhat * xhat
            m2 = t.sum(axis=axes, keepdims=True) * inv_n
            gx = np.multiply(xhat, m2, out=t)  # xhat * m2
            gx += m1
            np.subtract(dxhat, gx, out=gx)
            gx *= rstd
        grads = [gx]
        if weight is not None:
            grads.append((g * xhat).sum(axis=lead) if weight.requires_grad else None)
        if bias is not None:
            grads.append(g.sum(axis=lead) if bias.requires_grad else None)
        return tuple(grads)

    parents = tuple(t for t in (x, weight, bias) if t is not None)
    return make_result(out.astype(xd.dtype, copy=False), parents, backward, "layer_norm")


def dropout(x, p: float = 0.5, training: bool = True, generator=None):
    """Zero each element with probability p and scale the rest by 1/(1-p) ("inverted" dropout,
    so nothing changes at evaluation time). Identity when not training or p == 0."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    rng = generator if generator is not None else nt_random.default_generator()
    scale = np.asarray(1.0 / (1.0 - p), dtype=x.dtype)
    mask = (rng.random(x.shape, dtype=np.float64) >= p) * scale
    mask = mask.astype(x.dtype, copy=False)
    return make_result(x.data * mask, (x,), lambda g: (g * mask,), "dropout")
