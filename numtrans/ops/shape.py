"""Ops that move values around without changing them: reshape, transpose, indexing, gather,
concatenate, stack, split. Their backward moves the gradient back to where each value came from.

| op          | backward                                                          |
|-------------|-------------------------------------------------------------------|
| reshape     | reshape g back to the input shape                                 |
| permute     | permute g by the inverse permutation                              |
| x[index]    | basic index: SliceGrad(index, g), which the engine writes into x's |
|             | one gradient buffer; integer arrays: scatter-add into zeros         |
| gather      | scatter-add along the gathered axis                               |
| concatenate | split g at the same boundaries                                    |
| stack       | take each slice of g back                                         |
| split       | each piece: SliceGrad (as x[index]), so the pieces share one buffer |

``slice_textbook`` keeps the plain form of a slice's backward (a zero array of the whole
input, g written in), beside ``_slice`` which hands the engine the same gradient without it.
"""

from __future__ import annotations

import numpy as np

from ..autograd.engine import SliceGrad
from ..tensor import Tensor, make_result
from .arithmetic import as_tensor, unbroadcast


def reshape(x, shape):
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    try:
        out = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"cannot reshape a tensor of shape {x.shape} into {shape}") from None
    return make_result(out, (x,), lambda g: (g.reshape(x.shape),), "reshape")


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = start_dim % x.ndim, end_dim % x.ndim
    new = x.shape[:s] + (int(np.prod(x.shape[s : e + 1])),) + x.shape[e + 1 :]
    return reshape(x, new)


def permute(x, dims):
    dims = tuple(int(d) % max(x.ndim, 1) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute dims {dims} are not a permutation of {x.ndim} axes")
    # the inverse permutation; plain Python: np.argsort of a short tuple costs ~10x more
    inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
    return make_result(x.data.transpose(dims), (x,), lambda g: (g.transpose(inverse),), "permute")


def transpose(x, dim0=-2, dim1=-1):
    """Swap two axes. A swap is its own inverse, so the backward swaps the same two axes."""
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]  # IndexError for an axis out of range
    dims = tuple(dims)
    return make_result(x.data.transpose(dims), (x,), lambda g: (g.transpose(dims),), "transpose")


def unsqueeze(x, dim):
    return reshape(x, np.expand_dims(x.data, dim).shape)


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    d = dim % x.ndim
    if x.shape[d] != 1:
        return x
    return reshape(x, x.shape[:d] + x.shape[d + 1 :])


def expand(x, shape):
    """Broadcast to ``shape`` (-1 keeps a size); the gradient sums over the stretched axes."""
    shape = tuple(x.shape[i - len(shape) + x.ndim] if n == -1 else n for i, n in enumerate(shape))
    out = np.broadcast_to(x.data, shape)
    return make_result(out, (x,), lambda g: (unbroadcast(g, x.shape),), "expand")


def astype(x, dtype):
    dtype = np.dtype(dtype)
    out = x.data.astype(dtype)
    if dtype.kind != "f":  # casting to integers/bools ends the graph
        return Tensor(out)
    return make_result(out, (x,), lambda g: (g.astype(x.dtype),), "astype")


def _plain_index(index):
    """Unwrap Tensors inside an index; report whether it is basic (views only, no repeats)."""
    items = index if isinstance(index, tuple) else (index,)
    items = tuple(np.asarray(i.data) if hasattr(i, "data") else i for i in items)
    basic = all(
        i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice)) for i in items
    )
    return (items if isinstance(index, tuple) else items[0]), basic


def getitem(x, index):
    """``x[index]`` with ints, slices, None, Ellipsis, integer arrays or boolean masks."""
    index, basic = _plain_index(index)
    out = x.data[index]

    if basic:  # each element selected at most once: the slice's gradient, no zero array
        return make_result(np.asarray(out), (x,), lambda g: (SliceGrad(index, g),), "getitem")

    def backward(g):
        grad = np.zeros(x.shape, dtype=g.dtype)
        np.add.at(grad, index, g)  # integer arrays may repeat an element: add, not assign
        return (grad,)

    return make_result(np.asarray(out), (x,), backward, "getitem")


def dim_or_axis(dim, axis, default=None):
    """PyTorch's ``dim`` or NumPy's ``axis`` (an alias): one of them, never both."""
    if axis is None:
        return dim
    if dim is not None and dim != default:
        raise TypeError(
            f"pass dim= or axis= (NumPy's alias), not both (got dim={dim}, axis={axis})"
        )
    return axis


def gather(x, dim, index, *, axis=None):
    """out[i][j] = x[i][index[i][j]] along ``dim`` (``torch.gather``/``np.take_along_axis``)."""
    axis = dim_or_axis(dim, axis)
    idx = np.asarray(getattr(index, "data", index))
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"gather index must be integer, got dtype {idx.dtype}")
    axis = axis % x.ndim
    if idx.size and (idx.min() < -x.shape[axis] or idx.max() >= x.shape[axis]):
        raise IndexError(f"gather index out of range for axis {axis} of size {x.shape[axis]}")
    if idx.ndim != x.ndim or any(
        n > m for d, (n, m) in enumerate(zip(idx.shape, x.shape)) if d != axis
    ):
        raise ValueError(
            f"gather index of shape {idx.shape} does not fit input {x.shape} (axis {axis}): "
            "same number of dimensions, and no larger on the other axes"
        )
    # like torch.gather: on the other axes the index may be shorter (no broadcasting)
    src = x.data[tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(idx.shape))]
    out = np.take_along_axis(src, idx, axis=axis)

    def backward(g):
        grad = np.zeros(x.shape, dtype=g.dtype)
        where = list(np.ix_(*[np.arange(n) for n in idx.shape]))
        where[axis] = idx
        np.add.at(grad, tuple(where), g)
        return (grad,)

    return make_result(out, (x,), backward, "gather")


def concatenate(tensors, dim=0, *, axis=None):
    """``torch.cat``: join along ``dim``; the backward splits the gradient at the same bounds."""
    axis = dim_or_axis(dim, axis, 0)
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    out = np.concatenate([t.data for t in tensors], axis=axis)
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def backward(g):
        return tuple(np.split(g, bounds, axis=axis))

    return make_result(out, tuple(tensors), backward, "concatenate")


def stack(tensors, dim=0, *, axis=None):
    """``torch.stack``: a new ``dim``; the backward takes each slice of the gradient back."""
    axis = dim_or_axis(dim, axis, 0)
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack needs tensors of one shape, got {sorted(shapes)}")
    out = np.stack([t.data for t in tensors], axis=axis)

    def backward(g):
        return tuple(np.moveaxis(g, axis, 0))

    return make_result(out, tuple(tensors), backward, "stack")


def split(x, split_size_or_sections, dim=0, *, axis=None):
    """Split into pieces of ``split_size`` (last may be smaller) or of the given section sizes."""
    axis = dim_or_axis(dim, axis, 0)
    n = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        sizes = [min(step, n - s) for s in range(0, n, step)]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split sections {sizes} do not add up to {n} (axis {axis})")
    pieces, start = [], 0
    lead = (slice(None),) * (axis % x.ndim)
    for size in sizes:
        pieces.append(_slice(x, lead + (slice(start, start + size),)))
        start += size
    return pieces


def slice_textbook(x, index):
    """x[index] for a basic index, with the textbook backward: d(x[index])/dx is zero except
    at ``index``, so the gradient is a zero array of x's shape with g written in. Split into
    q, k, v this makes three (B, T, 3C) arrays per attention layer, and the engine two more
    when it sums them; ``_slice`` below gives the same gradient (tested) without them."""

    def backward(g):
        grad = np.zeros(x.shape, dtype=g.dtype)
        grad[index] = g
        return (grad,)

    return make_result(x.data[index], (x,), backward, "getitem")


def _slice(x, index):
    """x[index] for a tuple of slices (a view): ``slice_textbook`` whose backward returns
    ``SliceGrad(index, g)``; the engine writes every piece into one buffer for x."""
    return make_result(x.data[index], (x,), lambda g: (SliceGrad(index, g),), "getitem")
