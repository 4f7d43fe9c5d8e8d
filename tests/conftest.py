"""Shared test set-up: Hypothesis profiles and float64 helpers for gradient checks.

Hypothesis profiles (choose with ``HYPOTHESIS_PROFILE=dev pytest ...``):

* ``ci``   (default) few examples per test, no deadline: the whole suite stays fast on 2 cores;
* ``dev``  more examples, for a local run after changing an op;
* ``slow`` many examples, for hunting rare shapes before a release.

Tests that set their own ``@settings(max_examples=...)`` keep it under every profile.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import numtrans as nt

settings.register_profile(
    "ci",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "slow",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# ----------------------------------------------------------------------------- float64 helpers
def t64(data, requires_grad: bool = True) -> nt.Tensor:
    """A float64 leaf tensor holding a copy of ``data`` (finite differences need float64)."""
    return nt.Tensor(np.array(data, dtype=np.float64), requires_grad=requires_grad)


def rand64(rng: np.random.Generator, shape, low=-2.0, high=2.0) -> np.ndarray:
    """Uniform float64 values in [low, high)."""
    return rng.uniform(low, high, size=shape)


def away_from_zero(rng: np.random.Generator, shape, low=0.3, high=2.0) -> np.ndarray:
    """Values with |v| in [low, high) and a random sign: safe for 1/x, |x|, relu kinks."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def distinct(rng: np.random.Generator, shape, gap=0.1) -> np.ndarray:
    """Values at least ``gap`` apart (no ties): max/min/sort have a unique gradient there."""
    n = int(np.prod(shape, dtype=np.int64))
    values = rng.permutation(n) * gap + rng.uniform(0, gap / 10, size=n) - n * gap / 2
    return values.reshape(shape)


def grads_of(fn, *inputs, upstream=None):
    """Run ``fn(*inputs)`` and backward (with ``upstream`` or a sum); return (out, [grads])."""
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    if upstream is None:
        out.sum().backward()
    else:
        out.backward(upstream)
    return out, [t.grad for t in inputs]


@pytest.fixture
def default_float64():
    """Make Python floats become float64 for the duration of one test, then restore."""
    previous = nt.get_default_dtype()
    nt.set_default_dtype(np.float64)
    try:
        yield
    finally:
        nt.set_default_dtype(previous)


@pytest.fixture(autouse=True)
def _restore_global_modes():
    """A test that fails inside no_grad()/detect_anomaly() must not leak the mode to the next."""
    from numtrans.autograd import grad_mode

    state = dict(grad_mode._state)
    dtype = nt.get_default_dtype()
    yield
    grad_mode._state.update(state)
    nt.set_default_dtype(dtype)
