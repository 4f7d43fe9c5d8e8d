"""The textbook version of each tuned hot path stands beside it and gives the same numbers
(issue 13: llm.c's ``matmul_forward_naive`` beside ``matmul_forward`` is the model)."""

import numpy as np
import pytest

import numtrans as nt
from numtrans.functional.layers import (
    embedding,
    embedding_textbook,
    layer_norm,
    layer_norm_textbook,
)
from numtrans.ops.elementwise import gelu, gelu_textbook


def _grads(fn, *tensors, upstream):
    for t in tensors:
        t.grad = None
    out = fn()
    out.backward(upstream)
    return out.data, [t.grad.copy() for t in tensors]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_in_place_equals_the_formula(dtype):
    rng = np.random.default_rng(0)
    x = nt.tensor(rng.standard_normal((4, 7, 16)).astype(dtype) * 3, requires_grad=True)
    g = rng.standard_normal(x.shape).astype(dtype)
    fast, (gf,) = _grads(lambda: gelu(x), x, upstream=g)
    slow, (gs,) = _grads(lambda: gelu_textbook(x), x, upstream=g)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol)
    np.testing.assert_allclose(gf, gs, rtol=tol, atol=tol)


def test_embedding_sorted_backward_equals_scatter_add():
    rng = np.random.default_rng(1)
    w = nt.tensor(rng.standard_normal((11, 5)), requires_grad=True)
    ids = rng.integers(0, 11, size=(3, 9))  # repeated ids: rows must add up
    g = rng.standard_normal((3, 9, 5))
    for pad in (None, 2):
        fast, (gf,) = _grads(lambda pad=pad: embedding(ids, w, pad), w, upstream=g)
        slow, (gs,) = _grads(lambda pad=pad: embedding_textbook(ids, w, pad), w, upstream=g)
        np.testing.assert_array_equal(fast, slow)
        np.testing.assert_allclose(gf, gs, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm_hand_backward_equals_autograd_of_the_formula(affine):
    rng = np.random.default_rng(2)
    x = nt.tensor(rng.standard_normal((2, 6, 8)) * 2 + 1, requires_grad=True)
    w = nt.tensor(rng.standard_normal(8), requires_grad=True) if affine else None
    b = nt.tensor(rng.standard_normal(8), requires_grad=True) if affine else None
    g = rng.standard_normal(x.shape)
    params = [t for t in (x, w, b) if t is not None]
    fast, gf = _grads(lambda: layer_norm(x, 8, w, b), *params, upstream=g)
    slow, gs = _grads(lambda: layer_norm_textbook(x, 8, w, b), *params, upstream=g)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    for a, c in zip(gf, gs):
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-10)
