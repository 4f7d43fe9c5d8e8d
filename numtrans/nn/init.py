"""Weight initialisation, in place on a Parameter's ``.data`` (PyTorch's ``nn.init`` names).

Why it matters: with y = W x and x of unit variance, Var(y_i) = fan_in * Var(W). Choosing
Var(W) ~ 1 / fan_in keeps activations at a stable scale through many layers.

* ``xavier_uniform_`` / ``xavier_normal_`` (Glorot & Bengio, 2010): Var(W) = 2 / (fan_in + fan_out),
  balancing the forward and backward passes. U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
* ``kaiming_uniform_`` (He et al., 2015): Var(W) = gain^2 / fan_in, with gain = sqrt(2 / (1 + a^2))
  for a leaky ReLU of slope a. PyTorch's default ``Linear`` init is kaiming_uniform_ with
  a = sqrt(5), which works out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
* ``normal_(std=0.02)``: GPT-2 and BERT draw every weight from N(0, 0.02^2).

A weight of shape (out, in) (the Linear layout) has fan_in = in, fan_out = out. All draws use
``numtrans.manual_seed``'s generator unless ``generator=`` is given.
"""

from __future__ import annotations

import math

import numpy as np

from .. import random as nt_random


def _rng(generator):
    return generator if generator is not None else nt_random.default_generator()


def _fill(tensor, values) -> None:
    tensor.data[...] = np.asarray(values, dtype=tensor.dtype)


def fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in, *kernel): in * kernel, out * kernel."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in/out need a weight with at least 2 dims, got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def zeros_(tensor):
    tensor.data[...] = 0
    return tensor


def ones_(tensor):
    tensor.data[...] = 1
    return tensor


def constant_(tensor, value: float):
    tensor.data[...] = value
    return tensor


def _float_dtype(tensor):
    """Draw directly in the tensor's dtype when NumPy can (float32 draws are twice as fast)."""
    return tensor.dtype if tensor.dtype in (np.float32, np.float64) else np.float64


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    u = _rng(generator).random(tensor.shape, dtype=_float_dtype(tensor))
    _fill(tensor, a + (b - a) * u)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    z = _rng(generator).standard_normal(tensor.shape, dtype=_float_dtype(tensor))
    _fill(tensor, mean + std * z)
    return tensor


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a: float = 0.0, generator=None):
    """U(-bound, bound), bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2))."""
    fan_in, _ = fan_in_and_fan_out(tensor)
    gain = math.sqrt(2.0 / (1 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in)
    return uniform_(tensor, -bound, bound, generator)
