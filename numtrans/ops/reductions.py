"""Reductions over axes: sum, mean, var, max, min.

The backward of a reduction puts the gradient back on the axes that were reduced:
``expand`` re-inserts the reduced axes (size 1) so that ``g`` broadcasts over the input shape.

| op    | forward                          | backward: d(loss)/dx                          |
|-------|----------------------------------|-----------------------------------------------|
| sum   | sum_i x_i                        | g (broadcast)                                 |
| mean  | sum_i x_i / n                    | g / n                                         |
| var   | sum_i (x_i - mean)^2 / (n - c)   | g * 2 (x_i - mean) / (n - c)                  |
| max   | max_i x_i                        | g shared equally among the positions that tie |
"""

from __future__ import annotations

import builtins

import numpy as np

from ..tensor import make_result


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < builtins.max(ndim, 1):
            raise IndexError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(a % ndim for a in axes)) if ndim else ()


def _expand(g: np.ndarray, axes: tuple, keepdims: bool) -> np.ndarray:
    """Give ``g`` back the reduced axes as size-1 axes so it broadcasts against the input."""
    return g if keepdims else np.expand_dims(g, axes)


def _count(shape, axes) -> int:
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def sum(x, axis=None, keepdims=False):
    axes = _axes(axis, x.ndim)
    out = np.sum(x.data, axis=axes, keepdims=keepdims)

    def backward(g):
        return (np.broadcast_to(_expand(g, axes, keepdims), x.shape),)

    return make_result(np.asarray(out), (x,), backward, "sum")


def mean(x, axis=None, keepdims=False):
    axes = _axes(axis, x.ndim)
    n = _count(x.shape, axes)
    out = np.mean(x.data, axis=axes, keepdims=keepdims)

    def backward(g):
        return (np.broadcast_to(_expand(g, axes, keepdims) / n, x.shape),)

    return make_result(np.asarray(out, dtype=x.dtype), (x,), backward, "mean")


def var(x, axis=None, keepdims=False, correction=1):
    """Variance with ``correction`` (1 = unbiased, PyTorch's default; 0 = population)."""
    axes = _axes(axis, x.ndim)
    n = _count(x.shape, axes)
    centered = x.data - np.mean(x.data, axis=axes, keepdims=True)
    out = np.sum(centered * centered, axis=axes, keepdims=keepdims) / (n - correction)

    def backward(g):
        return (_expand(g, axes, keepdims) * (2.0 / (n - correction)) * centered,)

    return make_result(np.asarray(out, dtype=x.dtype), (x,), backward, "var")


def _extreme(x, axis, keepdims, fn, name):
    if x.data.size == 0:
        raise ValueError(f"{name}() of an empty tensor")
    axes = _axes(axis, x.ndim)
    out = fn(x.data, axis=axes, keepdims=True)

    def backward(g):
        hit = x.data == out
        share = hit / np.sum(hit, axis=axes, keepdims=True)
        return ((_expand(g, axes, keepdims) * share).astype(x.dtype, copy=False),)

    result = out if keepdims else np.squeeze(out, axis=axes)
    return make_result(np.asarray(result), (x,), backward, name)


def max(x, axis=None, keepdims=False):
    return _extreme(x, axis, keepdims, np.max, "max")


def min(x, axis=None, keepdims=False):
    return _extreme(x, axis, keepdims, np.min, "min")
