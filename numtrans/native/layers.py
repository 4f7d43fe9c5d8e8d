"""Fused GELU, LayerNorm and softmax cross-entropy on the C++ kernels, as autograd ops.

The textbook versions stay where a reader looks for them, and they are the reference these are
tested against (``tests/test_native_layers.py``, hypothesis, float32 and float64):

=================  =============================================  ===================================
op                 reference (NumPy)                               fused kernel (C++)
=================  =============================================  ===================================
GELU (exact)       ``numtrans.ops.elementwise.gelu``               ``csrc/cpu/layers_kernels.cpp``
LayerNorm          ``numtrans.functional.layers.layer_norm``       same file
cross-entropy      ``numtrans.functional.losses.cross_entropy``    same file
=================  =============================================  ===================================

Each reference function asks ``numtrans.backends.fused_layers(dtype)`` first and hands the work
here when it returns this module: when the compiled module is built and ``backend="auto"``
resolves to "cpu" (``NUMTRANS_BACKEND=numpy`` or ``with numtrans.backends.use("numpy"):`` keep
the NumPy path), for float32 and float64. What the kernels save for the backward is smaller than
the reference's: GELU keeps only x (the reference keeps Phi(x) too), LayerNorm keeps x with one
mean and one 1/std per row (the reference keeps the normalised x), the loss keeps the logits and
one log-sum-exp per row (the reference keeps exp(logits)).

One departure from the reference, in the kernel's favour: the fused GELU computes
Phi(x) = erfc(-x / sqrt 2) / 2, which keeps its digits where Phi is tiny (x < -5), while the
reference's (1 + erf(x / sqrt 2)) / 2 rounds them away; both agree to float rounding elsewhere.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backends
from ..tensor import make_result

__all__ = ["cross_entropy_rows", "gelu", "layer_norm"]


def _kernels():
    return backends.get("cpu")


def _ran(result):
    """The arrays a kernel returned, without the name of the instruction set that ran (the last
    item; tests/test_native_layers.py checks it by calling the kernels directly)."""
    *arrays, _isa = result
    return arrays[0] if len(arrays) == 1 else arrays


def _c(a: np.ndarray, dtype) -> np.ndarray:
    return np.asarray(a, dtype=dtype, order="C")  # (not ascontiguousarray: it makes 0-d 1-d)


def gelu(x):
    """GELU(x) = x Phi(x) (exact, erf form); backward g (Phi(x) + x phi(x)), recomputed from x."""
    xd = _c(x.data, x.dtype)
    out = _ran(_kernels().gelu_forward(xd))

    def backward(g):
        return (_ran(_kernels().gelu_backward(_c(g, xd.dtype), xd)),)

    return make_result(out, (x,), backward, "gelu")


def layer_norm(x, shape: tuple, weight=None, bias=None, eps: float = 1e-5):
    """LayerNorm over the trailing ``shape`` of x: the NumPy reference's formula and gradients
    (see ``numtrans.functional.layers.layer_norm``), in one pass per row each way."""
    n = math.prod(shape)
    dt = x.dtype
    x2 = _c(x.data, dt).reshape(-1, n)  # (rows, n)
    w = None if weight is None else _c(weight.data, dt).reshape(n)
    b = None if bias is None else _c(bias.data, dt).reshape(n)
    y, mean, rstd = _ran(_kernels().layer_norm_forward(x2, w, b, float(eps)))

    def backward(g):
        need_w = weight is not None and weight.requires_grad
        need_b = bias is not None and bias.requires_grad
        dx, dw, db = _ran(
            _kernels().layer_norm_backward(
                _c(g, dt).reshape(-1, n), x2, w, mean, rstd, x.requires_grad, need_w, need_b
            )
        )
        grads = [None if dx is None else dx.reshape(x.shape)]
        if weight is not None:
            grads.append(None if dw is None else dw.reshape(weight.shape))
        if bias is not None:
            grads.append(None if db is None else db.reshape(bias.shape))
        return tuple(grads)

    parents = tuple(t for t in (x, weight, bias) if t is not None)
    return make_result(y.reshape(x.shape), parents, backward, "layer_norm")


def cross_entropy_rows(logits2d: np.ndarray, target: np.ndarray, ignore_index: int, eps: float):
    """Per-row losses and the backward of softmax cross-entropy for (rows, C) logits whose
    targets were checked by the caller. Returns (losses (rows,), grad(row_scale) -> (rows, C))
    where row_scale (rows,) is the incoming gradient of each row's loss (0 for ignored rows)."""
    dt = logits2d.dtype
    x = _c(logits2d, dt)
    t = _c(target, np.int64)
    losses, lse = _ran(_kernels().cross_entropy_forward(x, t, int(ignore_index), float(eps)))

    def grad(row_scale: np.ndarray) -> np.ndarray:
        return _ran(_kernels().cross_entropy_backward(x, t, lse, _c(row_scale, dt), float(eps)))

    return losses, grad
