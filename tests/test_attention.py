"""scaled_dot_product_attention: masks, stability, gradients, PyTorch parity, backend dispatch."""

import types

import numpy as np
import pytest

import numtrans as nt
from numtrans.functional import _dispatch
from numtrans.functional.attention import (
    attention_weights,
    causal_mask,
    scaled_dot_product_attention,
)


def sdpa(*args, **kwargs):
    return scaled_dot_product_attention(*args, backend="numpy", **kwargs)


def rand(*shape, seed=0, grad=True):
    data = np.random.default_rng(seed).standard_normal(shape)
    return nt.Tensor(data, requires_grad=grad)


def reference(q, k, v, allowed=None, additive=None, scale=None):
    """The formula in plain NumPy, masked entries removed explicitly."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if additive is not None:
        s = s + additive
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    m = s.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(s - m)
    z = e.sum(-1, keepdims=True)
    return (e / np.where(z == 0, 1, z)) @ v


def test_matches_formula_with_lengths_and_value_size_differing():
    q, k, v = rand(2, 3, 4, 5, seed=1), rand(2, 3, 6, 5, seed=2), rand(2, 3, 6, 7, seed=3)
    out = sdpa(q, k, v)
    assert out.shape == (2, 3, 4, 7)
    np.testing.assert_allclose(out.data, reference(q.data, k.data, v.data), rtol=1e-12, atol=1e-12)
    out2 = sdpa(q, k, v, scale=0.3)
    np.testing.assert_allclose(
        out2.data, reference(q.data, k.data, v.data, scale=0.3), rtol=1e-12, atol=1e-12
    )


def test_bool_mask_true_means_attend_and_broadcasts_over_batch_and_heads():
    q, k, v = rand(2, 3, 4, 5, seed=1), rand(2, 3, 6, 5, seed=2), rand(2, 3, 6, 5, seed=3)
    allowed = np.random.default_rng(4).random((2, 1, 4, 6)) > 0.4
    out = sdpa(q, k, v, attn_mask=allowed)
    np.testing.assert_allclose(out.data, reference(q.data, k.data, v.data, allowed), atol=1e-12)


def test_float_mask_is_added():
    q, k, v = rand(1, 2, 3, 4, seed=1), rand(1, 2, 5, 4, seed=2), rand(1, 2, 5, 4, seed=3)
    bias = np.random.default_rng(4).standard_normal((3, 5))
    bias[0, 1] = -np.inf
    out = sdpa(q, k, v, attn_mask=bias)
    np.testing.assert_allclose(
        out.data, reference(q.data, k.data, v.data, additive=bias), atol=1e-12
    )


def test_causal_is_top_left_aligned():
    assert causal_mask(2, 4).tolist() == [[True, False, False, False], [True, True, False, False]]
    assert causal_mask(2, 4, offset=2)[1].all()
    q, k, v = rand(1, 3, 4, seed=1), rand(1, 5, 4, seed=2), rand(1, 5, 4, seed=3)
    out = sdpa(q, k, v, is_causal=True)
    np.testing.assert_allclose(
        out.data, reference(q.data, k.data, v.data, causal_mask(3, 5)), atol=1e-12
    )


def test_fully_masked_rows_give_zeros_and_zero_gradients_not_nan():
    q, k, v = rand(1, 3, 4, seed=1), rand(1, 5, 4, seed=2), rand(1, 5, 4, seed=3)
    allowed = np.ones((3, 5), dtype=bool)
    allowed[1] = False
    for mask in (allowed, np.where(allowed, 0.0, -np.inf)):
        for t in (q, k, v):
            t.grad = None
        out = sdpa(q, k, v, attn_mask=mask)
        (out * out).sum().backward()
        assert np.all(out.data[0, 1] == 0) and np.isfinite(out.data).all()
        assert np.all(q.grad[0, 1] == 0)
        for t in (q, k, v):
            assert np.isfinite(t.grad).all()


def test_large_scores_are_stable():
    q, k, v = rand(1, 2, 4, seed=1), rand(1, 3, 4, seed=2), rand(1, 3, 4, seed=3)
    out = sdpa(q * 1e4, k, v)
    assert np.isfinite(out.data).all()


@pytest.mark.parametrize("kind", ["none", "bool", "float", "causal", "fully_masked"])
def test_gradcheck_every_mask_kind(kind):
    q, k, v = rand(1, 2, 3, 4, seed=1), rand(1, 2, 4, 4, seed=2), rand(1, 2, 4, 3, seed=3)
    if kind == "float":  # a learnable additive bias: its gradient is checked too
        bias = rand(1, 1, 3, 4, seed=6)
        assert nt.gradcheck(lambda q, k, v, b: sdpa(q, k, v, attn_mask=b), [q, k, v, bias])
        return
    allowed = np.random.default_rng(5).random((3, 4)) > 0.3
    allowed[:, 0] = True
    fully = allowed.copy()
    fully[2] = False
    kwargs = {
        "none": {},
        "bool": {"attn_mask": allowed},
        "causal": {"is_causal": True},
        "fully_masked": {"attn_mask": fully},
    }[kind]
    assert nt.gradcheck(lambda q, k, v: sdpa(q, k, v, **kwargs), [q, k, v])


def test_errors_name_the_problem():
    q, k, v = rand(1, 3, 4), rand(1, 5, 4), rand(1, 5, 4)
    with pytest.raises(ValueError, match="not both"):
        sdpa(q, k, v, attn_mask=np.ones((3, 5), bool), is_causal=True)
    with pytest.raises(ValueError, match="same last dim"):
        sdpa(q, rand(1, 5, 3), v)
    with pytest.raises(ValueError, match="number of keys"):
        sdpa(q, k, rand(1, 4, 4))
    with pytest.raises(TypeError, match="boolean or floating"):
        sdpa(q, k, v, attn_mask=np.ones((3, 5), dtype=np.int64))


def test_dropout_drops_weights_reproducibly():
    q, k, v = rand(1, 4, 4), rand(1, 6, 4), rand(1, 6, 4)
    nt.manual_seed(0)
    a = sdpa(q, k, v, dropout_p=0.5)
    nt.manual_seed(0)
    b = sdpa(q, k, v, dropout_p=0.5)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.allclose(a.data, sdpa(q, k, v).data)
    nt.manual_seed(0)
    w = attention_weights(q, k)
    from numtrans.functional.layers import dropout

    np.testing.assert_allclose(a.data, (dropout(w, 0.5) @ v).data, atol=1e-12)


# ---------------------------------------------------------------- PyTorch parity
@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
def test_matches_torch_outputs_and_gradients(mask):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    shapes = [(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5)]
    arrays = [rng.standard_normal(s) for s in shapes]
    kwargs = {}
    if mask == "bool":
        m = rng.random((2, 1, 4, 6)) > 0.3
        m[0, 0, 2] = False  # a fully masked query row
        kwargs["attn_mask"] = m
    elif mask == "float":
        kwargs["attn_mask"] = rng.standard_normal((4, 6))
    elif mask == "causal":
        kwargs["is_causal"] = True
    ours = [nt.Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = sdpa(*ours, **kwargs)
    tkw = {
        key: (torch.tensor(val) if isinstance(val, np.ndarray) else val)
        for key, val in kwargs.items()
    }
    tout = F.scaled_dot_product_attention(*theirs, **tkw)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- backend dispatch
def test_auto_resolves_to_numpy_without_native(monkeypatch):
    monkeypatch.delenv("NUMTRANS_BACKEND", raising=False)
    monkeypatch.setattr(_dispatch, "_native_module", lambda: None)
    assert _dispatch.resolve_backend("auto") == "numpy"
    q = rand(1, 2, 4)
    assert scaled_dot_product_attention(q, q, q).shape == (1, 2, 4)  # backend="auto"
    with pytest.raises(RuntimeError, match="not available|cannot be imported"):
        _dispatch.resolve_backend("cpu")


def test_native_package_without_fused_attention_counts_as_absent(monkeypatch):
    monkeypatch.setattr(_dispatch, "_found", [])  # forget an earlier successful import
    monkeypatch.setattr(_dispatch.importlib, "import_module", lambda name: types.SimpleNamespace())
    assert _dispatch._native_module() is None and not _dispatch.native_available()


def test_dispatch_rules(monkeypatch):
    monkeypatch.delenv("NUMTRANS_BACKEND", raising=False)
    with pytest.raises(ValueError, match="unknown backend"):
        _dispatch.resolve_backend("tpu")
    with pytest.raises(ValueError, match="no attention dropout"):
        _dispatch.resolve_backend("cpu", dropout_p=0.1)
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")
    assert _dispatch.resolve_backend("auto") == "numpy"
    monkeypatch.setenv("NUMTRANS_BACKEND", "cpu")
    assert _dispatch.resolve_backend("auto", dropout_p=0.1) == "numpy"  # dropout stays in NumPy
    monkeypatch.setenv("NUMTRANS_BACKEND", "bogus")
    with pytest.raises(ValueError, match="NUMTRANS_BACKEND"):
        _dispatch.resolve_backend("auto")


def test_auto_dispatches_to_native_kernel_when_present(monkeypatch):
    monkeypatch.delenv("NUMTRANS_BACKEND", raising=False)
    calls = []

    def fused_attention(q, k, v, attn_mask=None, is_causal=False, scale=None, backend="cpu"):
        calls.append((attn_mask, is_causal, scale, backend))
        return sdpa(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)

    fake = types.SimpleNamespace(fused_attention=fused_attention)
    monkeypatch.setattr(_dispatch, "_native_module", lambda: fake)
    monkeypatch.setattr(_dispatch.backends, "is_available", lambda name: name == "cpu")
    q = rand(1, 3, 4)
    out = scaled_dot_product_attention(q, q, q, is_causal=True, scale=0.5)
    assert calls == [(None, True, 0.5, "cpu")]
    np.testing.assert_allclose(out.data, sdpa(q, q, q, is_causal=True, scale=0.5).data)
    scaled_dot_product_attention(q, q, q, dropout_p=0.1)  # dropout: NumPy path, no call
    assert len(calls) == 1
