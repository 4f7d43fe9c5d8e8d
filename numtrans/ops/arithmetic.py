"""Arithmetic under NumPy broadcasting: + - * / neg pow.

Broadcasting in the forward means summing in the backward: if ``a`` of shape (3, 1) was stretched
to (3, 4), each of its elements was used 4 times, so its gradient is the sum over that axis.
``unbroadcast`` does this (and also sums away the leading axes that broadcasting added).
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, get_default_dtype, make_result


def as_tensor(x, like=None):
    """Tensors pass through; numbers and arrays are wrapped (numbers take ``like``'s dtype)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float)) and like.dtype.kind == "f":
        return Tensor(np.asarray(x, dtype=like.dtype))  # 2.0 * float32 stays float32
    return Tensor(x)


def as_float(x):
    """The one rule for float ops (exp, log, tanh, GELU, softmax, LayerNorm, ...) given integer
    or boolean input: promote to the default float dtype, as ``torch.exp(int_tensor)`` does,
    instead of computing in integers and truncating. Float tensors pass through unchanged."""
    x = as_tensor(x)
    if x.dtype.kind in "fc":
        return x
    return Tensor(x.data.astype(get_default_dtype()))  # integers never require grad


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting.

    Example: shape (3, 1), grad shape (2, 3, 4) -> sum over axis 0 (added) and axis 2 (stretched).
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _pair(a, b):
    if not isinstance(a, Tensor):
        a = as_tensor(a, like=b)
    if not isinstance(b, Tensor):
        b = as_tensor(b, like=a)
    return a, b


def add(a, b):
    """a + b;  d/da = 1, d/db = 1."""
    a, b = _pair(a, b)

    def backward(g):
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)

    return make_result(a.data + b.data, (a, b), backward, "add")


def sub(a, b):
    """a - b;  d/da = 1, d/db = -1."""
    a, b = _pair(a, b)

    def backward(g):
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)

    return make_result(a.data - b.data, (a, b), backward, "sub")


def mul(a, b):
    """a * b;  d/da = b, d/db = a."""
    a, b = _pair(a, b)

    def backward(g):
        ga = unbroadcast(g * b.data, a.shape) if a.requires_grad else None
        gb = unbroadcast(g * a.data, b.shape) if b.requires_grad else None
        return ga, gb

    return make_result(a.data * b.data, (a, b), backward, "mul")


def div(a, b):
    """a / b;  d/da = 1/b, d/db = -a/b^2."""
    a, b = _pair(a, b)
    out = a.data / b.data

    def backward(g):
        ga = unbroadcast(g / b.data, a.shape) if a.requires_grad else None
        gb = unbroadcast(-g * out / b.data, b.shape) if b.requires_grad else None
        return ga, gb

    return make_result(out, (a, b), backward, "div")


def neg(a):
    """-a;  d/da = -1."""
    return make_result(-a.data, (a,), lambda g: (-g,), "neg")


def pow(a, b):
    """a ** b;  d/da = b a^(b-1),  d/db = a^b log(a) (only where a > 0 matters)."""
    if not isinstance(b, Tensor) and np.ndim(b) == 0:  # the common case: a constant exponent
        p = float(b)
        out = a.data**p

        def backward_const(g):
            return (g * (p * a.data ** (p - 1)),)

        return make_result(out, (a,), backward_const, "pow")
    a, b = _pair(a, b)
    out = a.data**b.data

    def backward(g):
        ga = unbroadcast(g * b.data * a.data ** (b.data - 1), a.shape) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a.data > 0, np.log(np.where(a.data > 0, a.data, 1)), 0)
            gb = unbroadcast(g * out * log_a, b.shape)
        return ga, gb

    return make_result(out, (a, b), backward, "pow")
