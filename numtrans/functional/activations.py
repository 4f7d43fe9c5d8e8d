"""Activations and the (log-)softmax, each with its own backward.

softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m),  m = max_j x_j  (subtracting m cannot change the
result but keeps exp from overflowing). Backward, with y = softmax(x) and g = dL/dy:

    dL/dx_i = y_i (g_i - sum_j g_j y_j)

log_softmax(x)_i = x_i - m - log sum_j exp(x_j - m);  dL/dx_i = g_i - softmax(x)_i sum_j g_j.

logsigmoid(x) = log sigmoid(x) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|));
d/dx logsigmoid(x) = 1 - sigmoid(x) = sigmoid(-x). ``sigmoid(x).log()`` is -inf once sigmoid
underflows (x below about -104 in float32); the rewritten form only ever exponentiates -|x| <= 0.

A row whose entries are all -inf (every position masked) has no meaningful softmax. numtrans
returns zeros there (and zero gradient) instead of NaN, like FlashAttention and PyTorch's SDPA;
plain ``torch.softmax`` would return NaN. ``log_softmax`` of such a row is -inf.
"""

from __future__ import annotations

import numpy as np

from ..ops.arithmetic import as_float
from ..ops.elementwise import gelu, relu, sigmoid, tanh
from ..ops.shape import dim_or_axis
from ..tensor import make_result

__all__ = ["gelu", "log_softmax", "logsigmoid", "relu", "sigmoid", "softmax", "tanh"]


def _row_max(x: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    return np.where(np.isneginf(m), 0, m)  # fully masked row: any finite shift will do


def softmax_array(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Stable softmax of a NumPy array (no autograd); fully masked rows give zeros."""
    e = np.exp(x - _row_max(x, axis))
    s = np.sum(e, axis=axis, keepdims=True)
    return e / np.where(s == 0, 1, s)


def softmax(x, dim: int = -1, *, axis: int | None = None):
    """softmax along ``dim`` (PyTorch's name; ``axis=`` is NumPy's alias). Backward: the
    Jacobian-vector product y * (g - sum(g * y))."""
    axis = dim_or_axis(dim, axis, -1)
    x = as_float(x)
    y = softmax_array(x.data, axis)

    def backward(g):
        return (y * (g - np.sum(g * y, axis=axis, keepdims=True)),)

    return make_result(y, (x,), backward, "softmax")


def log_softmax(x, dim: int = -1, *, axis: int | None = None):
    """log softmax along ``dim`` (``axis=`` is NumPy's alias), as x - max - log sum exp(x - max).
    Backward: g - softmax * sum(g)."""
    axis = dim_or_axis(dim, axis, -1)
    x = as_float(x)
    shifted = x.data - _row_max(x.data, axis)
    total = np.sum(np.exp(shifted), axis=axis, keepdims=True)
    lse = np.log(np.where(total == 0, 1, total))  # fully masked row: stays -inf, not NaN
    out = shifted - lse

    def backward(g):
        y = np.exp(out)  # softmax; exp(-inf) = 0 for masked entries
        return (g - y * np.sum(g, axis=axis, keepdims=True),)

    return make_result(out, (x,), backward, "log_softmax")


def logsigmoid(x):
    """log sigmoid(x), elementwise and finite for every finite x (PyTorch's ``F.logsigmoid``).

    Forward:  min(x, 0) - log1p(e),            e = exp(-|x|) in (0, 1]
    Backward: g * sigmoid(-x), where sigmoid(-x) = 1 / (1 + e) for x < 0 and e / (1 + e) for
    x >= 0 (the same e, so neither side overflows).
    """
    x = as_float(x)
    e = np.exp(-np.abs(x.data))
    out = np.minimum(x.data, 0) - np.log1p(e)
    d = np.where(x.data < 0, 1 / (1 + e), e / (1 + e))  # sigmoid(-x)

    def backward(g):
        return (g * d,)

    return make_result(out.astype(x.dtype, copy=False), (x,), backward, "logsigmoid")
