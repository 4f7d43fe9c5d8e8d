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


def test_engine_in_place_sums_and_slice_buffers_equal_the_textbook_sums():
    """A GPT's backward with the tuned accumulation (engine-owned buffers, SliceGrad for the
    q, k, v split) gives the same bits as ``accumulate_textbook`` (a new array per sum)."""
    from numtrans.autograd.engine import run_backward
    from numtrans.models.gpt import GPT, GPTConfig

    nt.manual_seed(0)
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=8, vocab_size=11, dropout=0.0)
    model = GPT(cfg).double()
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 11, size=(3, 8))
    grads = []
    for textbook in (False, True):
        model.zero_grad()
        _, loss = model(idx, np.roll(idx, -1, axis=1))
        run_backward(loss, textbook=textbook)
        grads.append({n: p.grad.copy() for n, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        np.testing.assert_array_equal(grads[0][name], grads[1][name], err_msg=name)
