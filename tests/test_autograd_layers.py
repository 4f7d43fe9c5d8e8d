"""Gradchecks (float64) and semantics of the layer ops and losses in ``numtrans.functional``:
linear, embedding, layer_norm, dropout, cross_entropy, nll_loss, mse_loss."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import grads_of, rand64, t64
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numtrans as nt
import numtrans.functional as F

seeds = st.integers(0, 2**32 - 1)
lead_shapes = hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3)


def _log_softmax(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


# ----------------------------------------------------------------------------- linear
@pytest.mark.parametrize("with_bias", [True, False])
@given(lead=lead_shapes, n_in=st.integers(1, 4), n_out=st.integers(1, 3), seed=seeds)
def test_linear(with_bias, lead, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rand64(rng, lead + (n_in,)), rand64(rng, (n_out, n_in)), rand64(rng, (n_out,))
    inputs = (t64(x), t64(w)) + ((t64(b),) if with_bias else ())
    out = F.linear(*inputs)
    np.testing.assert_allclose(out.data, x @ w.T + (b if with_bias else 0), rtol=1e-12)
    assert out.shape == lead + (n_out,)
    assert nt.gradcheck(F.linear, inputs)


def test_linear_with_frozen_input_or_weight():
    rng = np.random.default_rng(0)
    x, w, b = t64(rand64(rng, (2, 3))), t64(rand64(rng, (4, 3))), t64(rand64(rng, (4,)))
    x.requires_grad = False
    assert nt.gradcheck(F.linear, (x, w, b))
    _, (gx, gw, gb) = grads_of(F.linear, x, w, b)
    assert gx is None and gw.shape == (4, 3) and gb.shape == (4,)


def test_linear_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*weight shape \(4, 5\)"):
        F.linear(t64(np.ones((2, 3))), t64(np.ones((4, 5))))


# ----------------------------------------------------------------------------- embedding
@given(
    ids_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
    vocab=st.integers(1, 5),
    dim=st.integers(1, 3),
    seed=seeds,
)
def test_embedding_gradcheck_with_repeated_ids(ids_shape, vocab, dim, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=ids_shape)
    w = rand64(rng, (vocab, dim))
    out = F.embedding(ids, t64(w))
    np.testing.assert_array_equal(out.data, w[ids])
    assert nt.gradcheck(lambda W: F.embedding(ids, W), (t64(w),))
    assert nt.gradcheck(lambda W: F.embedding(nt.Tensor(ids), W), (t64(w),))


def test_embedding_scatter_adds_and_skips_padding_idx():
    w = t64(np.arange(12.0).reshape(4, 3))
    ids = np.array([[1, 2, 1], [0, 1, 3]])
    out = F.embedding(ids, w, padding_idx=3)
    np.testing.assert_array_equal(out.data[1, 2], [9.0, 10.0, 11.0])  # forward is unchanged
    upstream = np.arange(18.0).reshape(2, 3, 3)
    out.backward(upstream)
    expected = np.zeros((4, 3))
    for pos, token in np.ndenumerate(ids):
        expected[token] += upstream[pos]
    expected[3] = 0.0  # the padding row never learns
    np.testing.assert_array_equal(w.grad, expected)
    assert w.grad[1].tolist() == (upstream[0, 0] + upstream[0, 2] + upstream[1, 1]).tolist()


def test_embedding_errors():
    w = t64(np.ones((4, 2)))
    with pytest.raises(IndexError, match="token id 4 is out of range"):
        F.embedding(np.array([0, 4]), w)
    with pytest.raises(IndexError, match="token id -1"):
        F.embedding(np.array([-1, 0]), w)
    with pytest.raises(TypeError, match="integers"):
        F.embedding(np.array([0.0, 1.0]), w)


# ----------------------------------------------------------------------------- layer_norm
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
@given(
    lead=lead_shapes,
    norm=hnp.array_shapes(min_dims=1, max_dims=2, min_side=2, max_side=4),
    seed=seeds,
)
def test_layer_norm(affine, lead, norm, seed):
    rng = np.random.default_rng(seed)
    x = rand64(rng, lead + norm)
    w, b = rand64(rng, norm), rand64(rng, norm)
    axes = tuple(range(len(lead), len(lead) + len(norm)))
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    spec = norm[0] if len(norm) == 1 and seed % 2 else norm  # int or tuple normalized_shape
    if affine == "none":
        fn, inputs, expected = (lambda a: F.layer_norm(a, spec)), (t64(x),), xhat
    elif affine == "weight":
        fn, inputs, expected = (lambda a, c: F.layer_norm(a, spec, c)), (t64(x), t64(w)), xhat * w
    else:
        fn = lambda a, c, d: F.layer_norm(a, spec, c, d, eps=1e-5)
        inputs, expected = (t64(x), t64(w), t64(b)), xhat * w + b
    np.testing.assert_allclose(fn(*inputs).data, expected, rtol=1e-10, atol=1e-12)
    assert nt.gradcheck(fn, inputs)


def test_layer_norm_rejects_a_mismatched_shape():
    with pytest.raises(ValueError, match=r"does not end with \(4,\)"):
        F.layer_norm(t64(np.ones((2, 3))), 4)


# ----------------------------------------------------------------------------- dropout
def test_dropout_eval_and_p0_are_the_identity():
    x = t64(np.arange(6.0).reshape(2, 3))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0, training=True) is x


def test_dropout_train_is_seeded_scaled_and_its_gradient_is_the_mask():
    x = t64(np.ones((20, 50)) * 3.0)
    y = F.dropout(x, 0.25, training=True, generator=np.random.default_rng(7))
    again = F.dropout(x, 0.25, training=True, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(y.data, again.data)  # same seed, same mask
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], 3.0 / 0.75)  # inverted dropout: scaled at train
    assert 0.2 < 1 - kept.mean() < 0.3  # ~p of 1000 elements dropped
    y.backward(np.full(x.shape, 2.0))
    np.testing.assert_allclose(x.grad, np.where(kept, 2.0 / 0.75, 0.0))
    # the mask is fixed once drawn, so the op itself passes a gradcheck
    x64 = t64(rand64(np.random.default_rng(0), (3, 4)))
    mask = F.dropout(t64(np.ones((3, 4)), False), 0.5, generator=np.random.default_rng(1)).data
    assert nt.gradcheck(lambda a: F.dropout(a, 0.5, generator=np.random.default_rng(1)), (x64,))
    np.testing.assert_allclose(
        F.dropout(x64, 0.5, generator=np.random.default_rng(1)).data, x64.data * mask
    )


def test_dropout_uses_the_global_seed_and_keeps_dtype():
    x = nt.ones(4, 5)  # float32
    nt.manual_seed(3)
    a = F.dropout(x, 0.5)
    nt.manual_seed(3)
    b = F.dropout(x, 0.5)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.dtype == np.float32
    c = F.dropout(x, 0.5)  # the generator moved on: a new mask
    assert not np.array_equal(a.data, c.data)


def test_dropout_p1_and_invalid_p():
    x = t64(np.ones(3))
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y.data, 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 0.0)
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, 1.5)


# ----------------------------------------------------------------------------- cross_entropy
@st.composite
def classification(draw):
    """logits of shape (C,), (N, C) or (N, C, d1[, d2]) and matching class ids."""
    kind = draw(st.sampled_from(["C", "NC", "NCd"]))
    c = draw(st.integers(1, 4))
    if kind == "C":
        shape = (c,)
    elif kind == "NC":
        shape = (draw(st.integers(1, 4)), c)
    else:
        extra = draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3))
        shape = (draw(st.integers(1, 2)), c) + extra
    return shape


def _ce_reference(logits, target, ignore_index, reduction, smoothing):
    lp = _log_softmax(logits, axis=1 if logits.ndim > 1 else 0)
    lp = np.moveaxis(lp, 1, -1) if logits.ndim > 1 else lp
    c = lp.shape[-1]
    valid = target != ignore_index
    picked = np.take_along_axis(lp, np.where(valid, target, 0)[..., None], -1)[..., 0]
    losses = -(1 - smoothing) * picked - smoothing / c * lp.sum(-1)
    losses = np.where(valid, losses, 0.0)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / max(valid.sum(), 1)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(
    shape=classification(),
    smoothing=st.sampled_from([0.0, 0.1, 0.5]),
    ignore=st.booleans(),
    seed=seeds,
)
def test_cross_entropy(reduction, shape, smoothing, ignore, seed):
    rng = np.random.default_rng(seed)
    c = shape[1] if len(shape) > 1 else shape[0]
    target_shape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(0, c, size=target_shape)
    ignore_index = -100
    if ignore and target.size > 1:
        target.reshape(-1)[rng.integers(0, target.size)] = ignore_index
    elif ignore:
        ignore_index = 2  # a class id may also be the ignored one
    logits = rand64(rng, shape, -3, 3)
    kwargs = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    out = F.cross_entropy(t64(logits), target, **kwargs)
    expected = _ce_reference(logits, target, ignore_index, reduction, smoothing)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert out.shape == np.shape(expected)
    assert nt.gradcheck(lambda z: F.cross_entropy(z, nt.Tensor(target), **kwargs), (t64(logits),))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_every_target_ignored_gives_zero_not_nan(smoothing, reduction):
    logits = t64(rand64(np.random.default_rng(0), (3, 4)))
    target = np.full(3, -100)
    loss = F.cross_entropy(logits, target, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_array_equal(loss.data, 0.0)
    loss.sum().backward()
    np.testing.assert_array_equal(logits.grad, 0.0)


def test_cross_entropy_label_smoothing_has_no_log_of_zero():
    # softmax underflows to exactly 0 for the -1000 logit; log(softmax) would give -inf, inf loss
    logits = np.array([[0.0, -1000.0, 5.0], [2.0, 1.0, -800.0]])
    target = np.array([2, 0])
    loss = F.cross_entropy(t64(logits), target, label_smoothing=0.1)
    assert np.isfinite(loss.item())
    np.testing.assert_allclose(loss.item(), _ce_reference(logits, target, -100, "mean", 0.1))
    assert nt.gradcheck(lambda z: F.cross_entropy(z, target, label_smoothing=0.1), (t64(logits),))


def test_cross_entropy_errors():
    logits = t64(np.zeros((2, 3)))
    with pytest.raises(IndexError, match="target class 3 is out of range for 3 classes"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match="do not fit logits"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="integer class ids"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(logits, np.array([0, 1]), label_smoothing=1.5)


def test_cross_entropy_float32_stays_float32():
    logits = nt.randn(4, 5, requires_grad=True)
    loss = F.cross_entropy(logits, nt.randint(0, 5, (4,)), label_smoothing=0.1)
    loss.backward()
    assert loss.dtype == np.float32 and logits.grad.dtype == np.float32


# ----------------------------------------------------------------------------- nll, mse
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(shape=classification(), ignore=st.booleans(), seed=seeds)
def test_nll_loss(reduction, shape, ignore, seed):
    rng = np.random.default_rng(seed)
    c = shape[1] if len(shape) > 1 else shape[0]
    target = rng.integers(0, c, size=shape[:1] + shape[2:] if len(shape) > 1 else ())
    if ignore and target.size > 1:
        target.reshape(-1)[0] = -100
    logp = rand64(rng, shape, -3, 0)
    out = F.nll_loss(t64(logp), target, reduction=reduction)
    lp = np.moveaxis(logp, 1, -1) if logp.ndim > 1 else logp
    valid = target != -100
    picked = -np.take_along_axis(lp, np.where(valid, target, 0)[..., None], -1)[..., 0]
    losses = np.where(valid, picked, 0.0)
    expected = {
        "none": losses,
        "sum": losses.sum(),
        "mean": losses.sum() / max(valid.sum(), 1),
    }[reduction]
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert nt.gradcheck(lambda z: F.nll_loss(z, target, reduction=reduction), (t64(logp),))


def test_nll_of_log_softmax_equals_cross_entropy():
    rng = np.random.default_rng(5)
    logits, target = rand64(rng, (4, 3)), np.array([0, 2, 1, 2])
    x1, x2 = t64(logits), t64(logits)
    a = F.nll_loss(F.log_softmax(x1, axis=1), target)
    b = F.cross_entropy(x2, target)
    a.backward()
    b.backward()
    np.testing.assert_allclose(a.item(), b.item(), rtol=1e-13)
    np.testing.assert_allclose(x1.grad, x2.grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_mse_loss(reduction, shape, seed):
    rng = np.random.default_rng(seed)
    a, b = rand64(rng, shape), rand64(rng, shape)
    sq = (a - b) ** 2
    expected = {"none": sq, "sum": sq.sum(), "mean": sq.mean()}[reduction]
    out = F.mse_loss(t64(a), t64(b), reduction=reduction)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-14)
    # gradient w.r.t. both the input and a target that requires grad
    assert nt.gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), (t64(a), t64(b)))
    assert nt.gradcheck(lambda x: F.mse_loss(x, b, reduction=reduction), (t64(a),))


def test_mse_loss_shape_mismatch():
    with pytest.raises(ValueError, match=r"input shape \(2,\) != target shape \(3,\)"):
        F.mse_loss(t64(np.ones(2)), t64(np.ones(3)))
