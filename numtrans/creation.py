"""Ways to make tensors, mirroring ``torch.tensor``, ``zeros``, ``randn``, ``arange`` ...

Floating tensors default to float32 (``numtrans.set_default_dtype(np.float64)`` for gradient
checks); integer data gives int64. Random ones draw from ``numtrans.manual_seed``'s generator.
"""

from __future__ import annotations

import numpy as np

from . import random as nt_random
from .tensor import Tensor, _to_array, get_default_dtype


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _float(dtype):
    return np.dtype(dtype) if dtype is not None else get_default_dtype()


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``."""
    return Tensor(np.array(_to_array(data, dtype), copy=True), requires_grad=requires_grad)


def zeros(*shape, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), _float(dtype)), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.ones(_shape(shape), _float(dtype)), requires_grad=requires_grad)


def full(shape, value, dtype=None, requires_grad=False) -> Tensor:
    return Tensor(np.full(tuple(shape), value, _float(dtype)), requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad=False) -> Tensor:
    return Tensor(np.zeros_like(t.data), requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad=False) -> Tensor:
    return Tensor(np.ones_like(t.data), requires_grad=requires_grad)


def randn(*shape, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """Standard normal samples."""
    rng = generator or nt_random.default_generator()
    data = rng.standard_normal(_shape(shape)).astype(_float(dtype))
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False, generator=None) -> Tensor:
    """Uniform samples in [0, 1)."""
    rng = generator or nt_random.default_generator()
    data = rng.random(_shape(shape)).astype(_float(dtype))
    return Tensor(data, requires_grad=requires_grad)


def randint(low: int, high: int, shape, generator=None) -> Tensor:
    rng = generator or nt_random.default_generator()
    return Tensor(rng.integers(low, high, size=tuple(shape), dtype=np.int64))


def arange(start, end=None, step=1, dtype=None) -> Tensor:
    """Like ``np.arange``: integers give int64, floats the default float dtype."""
    if end is None:
        start, end = 0, start
    if dtype is None and all(isinstance(v, (int, np.integer)) for v in (start, end, step)):
        dtype = np.int64
    return Tensor(np.arange(start, end, step, dtype=_float(dtype)))
