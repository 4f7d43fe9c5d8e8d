"""Elementwise functions: y = f(x) applied to every element, so dy/dx is also elementwise.

| op       | forward                         | backward: d(loss)/dx = g * ...                  |
|----------|---------------------------------|-------------------------------------------------|
| exp      | e^x                             | e^x                                             |
| log      | ln x                            | 1/x                                             |
| sqrt     | sqrt(x)                         | 1 / (2 sqrt(x))                                 |
| abs      | |x|                             | sign(x)  (0 at 0, as PyTorch)                   |
| tanh     | tanh x                          | 1 - tanh^2 x                                    |
| sigmoid  | 1 / (1 + e^-x)                  | s (1 - s)                                       |
| relu     | max(x, 0)                       | 1 where x > 0                                   |
| gelu     | x Phi(x), Phi(x)=(1+erf(x/sqrt2))/2 | Phi(x) + x phi(x), phi = Gaussian density   |
| clip     | min(max(x, lo), hi)             | 1 where lo <= x <= hi                           |
"""

from __future__ import annotations

import math

import numpy as np

from .. import backends
from ..tensor import make_result
from .arithmetic import as_float, as_tensor, unbroadcast
from .special import erf


def exp(x):
    x = as_float(x)
    out = np.exp(x.data)
    return make_result(out, (x,), lambda g: (g * out,), "exp")


def log(x):
    x = as_float(x)
    return make_result(np.log(x.data), (x,), lambda g: (g / x.data,), "log")


def sqrt(x):
    x = as_float(x)
    out = np.sqrt(x.data)
    return make_result(out, (x,), lambda g: (g / (2 * out),), "sqrt")


def abs(x):
    return make_result(np.abs(x.data), (x,), lambda g: (g * np.sign(x.data),), "abs")


def tanh(x):
    x = as_float(x)
    out = np.tanh(x.data)
    return make_result(out, (x,), lambda g: (g * (1 - out * out),), "tanh")


def sigmoid(x):
    # 1/(1+e^-x) overflows e^-x for very negative x; e^x/(1+e^x) is the same value there.
    # Both use e = e^-|x| <= 1, which never overflows and keeps relative precision in the tails.
    x = as_float(x)
    e = np.exp(-np.abs(x.data))
    out = np.where(x.data >= 0, 1 / (1 + e), e / (1 + e))
    return make_result(out, (x,), lambda g: (g * out * (1 - out),), "sigmoid")


def relu(x):
    out = np.maximum(x.data, 0)
    return make_result(out, (x,), lambda g: (g * (x.data > 0),), "relu")


def gelu_textbook(x):
    """The exact GELU as the formula reads: out = x Phi(x), d out / dx = Phi(x) + x phi(x),
    with Phi(x) = (1 + erf(x / sqrt(2))) / 2 and phi the N(0, 1) density.

    ``gelu`` below computes exactly this with in-place steps on one buffer, because on a
    (B, T, 4C) activation the temporaries, not the arithmetic, are what costs (tests check the
    two agree, forward and backward)."""
    x = as_float(x)
    xd = x.data
    cdf = 0.5 * (1.0 + erf(xd / math.sqrt(2)))  # Phi(x)
    pdf = np.exp(-0.5 * xd * xd) / math.sqrt(2 * math.pi)  # phi(x)
    out = xd * cdf
    return make_result(out, (x,), lambda g: (g * (cdf + xd * pdf),), "gelu")


def gelu(x, approximate: str = "none"):
    """GELU(x) = x * Phi(x), the Gaussian CDF (Hendrycks & Gimpel, 2016).

    ``approximate="none"``: Phi(x) = (1 + erf(x / sqrt(2))) / 2, exact (BERT, PyTorch default).
    ``approximate="tanh"``: Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2 (GPT-2).
    """
    x = as_float(x)
    xd = x.data
    if approximate == "none" and (fused := backends.fused_layers(xd.dtype)) is not None:
        return fused.gelu(x)  # the same math in one C++ pass each way (numtrans/native/layers.py)
    if approximate == "none":
        # In-place steps on one buffer: the (B, T, 4C) temporaries are the cost here, not the math.
        cdf = erf(xd * (1 / math.sqrt(2)))
        cdf += 1.0
        cdf *= 0.5
        out = xd * cdf

        def backward(g):
            d = np.square(xd, out=np.empty_like(cdf))  # d = cdf + x pdf(x), pdf = N(0, 1) density
            d *= -0.5
            np.exp(d, out=d)
            d *= 1 / math.sqrt(2 * math.pi)
            d *= xd
            d += cdf
            d *= g
            return (d,)

    elif approximate == "tanh":
        k = math.sqrt(2 / math.pi)
        inner = k * (xd + 0.044715 * xd**3)
        t = np.tanh(inner)
        out = 0.5 * xd * (1 + t)

        def backward(g):
            dinner = k * (1 + 3 * 0.044715 * xd * xd)
            return (g * (0.5 * (1 + t) + 0.5 * xd * (1 - t * t) * dinner),)

    else:
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return make_result(out.astype(xd.dtype, copy=False), (x,), backward, "gelu")


def clip(x, min=None, max=None):
    """Clamp to [min, max]; the gradient passes where the value was not clipped."""
    if min is None and max is None:
        raise ValueError("clip needs at least one of min or max")
    lo = -np.inf if min is None else min
    hi = np.inf if max is None else max
    out = np.clip(x.data, lo, hi).astype(x.dtype, copy=False)
    return make_result(out, (x,), lambda g: (g * ((x.data >= lo) & (x.data <= hi)),), "clip")


def where(condition, a, b):
    """Elementwise ``a if condition else b`` (with broadcasting); the gradient follows the pick."""
    cond = np.asarray(getattr(condition, "data", condition), dtype=bool)
    a = as_tensor(a, like=b if hasattr(b, "data") else None)
    b = as_tensor(b, like=a)
    out = np.where(cond, a.data, b.data)

    def backward(g):
        ga = unbroadcast(np.where(cond, g, 0), a.shape) if a.requires_grad else None
        gb = unbroadcast(np.where(cond, 0, g), b.shape) if b.requires_grad else None
        return ga, gb

    return make_result(out, (a, b), backward, "where")


def masked_fill(x, mask, value):
    """Replace elements where ``mask`` is True by ``value`` (e.g. -inf before a softmax).
    Those elements get zero gradient."""
    m = np.asarray(getattr(mask, "data", mask))
    if m.dtype != bool:
        raise TypeError(f"masked_fill needs a boolean mask, got dtype {m.dtype}")
    out = np.where(m, np.asarray(value, dtype=x.dtype), x.data)
    if out.shape != x.shape:
        raise ValueError(f"mask of shape {m.shape} does not broadcast to the tensor's {x.shape}")
    return make_result(
        out, (x,), lambda g: (np.where(m, 0, g).astype(g.dtype, copy=False),), "masked_fill"
    )
