"""numtrans.native: input checks, autograd, threads, backends, empty shapes, and PyTorch parity."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numtrans as nt
from numtrans import backends
from numtrans.native import (
    attention_backward,
    attention_forward,
    fused_attention,
    last_isa,
    resolve_backend,
)

needs_cpu = pytest.mark.skipif(not backends.is_available("cpu"), reason=backends.reason("cpu"))
ISAS = backends.get("cpu").attention_isas().split(",") if backends.is_available("cpu") else []


def qkv(B=2, H=3, N=5, M=7, D=8, Dv=None, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(B, H, N, D), (B, H, M, D), (B, H, M, Dv or D)]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


# ---------------------------------------------------------------------------- input checks
@pytest.mark.parametrize("backend", ["numpy", pytest.param("cpu", marks=needs_cpu)])
def test_bad_inputs_raise_clear_errors(backend):
    q, k, v = qkv()
    f = lambda *a, **kw: attention_forward(*a, backend=backend, **kw)
    with pytest.raises(ValueError, match="q must have 4 dims"):
        f(q[0], k, v)
    with pytest.raises(TypeError, match="float32 or float64"):
        f(q.astype(np.int64), k, v)
    with pytest.raises(TypeError, match="share one dtype"):
        f(q.astype(np.float32), k, v)
    with pytest.raises(ValueError, match="batch and head dims"):
        f(q, k[:1], v[:1])
    with pytest.raises(ValueError, match="same head dim"):
        f(q, k[..., :4], v)
    with pytest.raises(ValueError, match="one row per key"):
        f(q, k, v[:, :, :3])
    with pytest.raises(ValueError, match="does not broadcast"):
        f(q, k, v, attn_mask=np.ones((5, 6), bool))
    with pytest.raises(TypeError, match="boolean or floating"):
        f(q, k, v, attn_mask=np.ones((5, 7), np.int32))
    with pytest.raises(ValueError, match="not both"):
        f(q, k, v, attn_mask=np.ones((5, 7), bool), is_causal=True)
    with pytest.raises(ValueError, match="finite"):
        f(q, k, v, scale=float("nan"))
    out, lse = f(q, k, v)
    with pytest.raises(ValueError, match="grad_out must have the output's shape"):
        attention_backward(out[:, :, :2], q, k, v, out, lse, backend=backend)
    with pytest.raises(ValueError, match="lse must have shape"):
        attention_backward(out, q, k, v, out, lse[:, :, :2], backend=backend)


def test_unknown_backend_and_dropout_are_refused():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="unknown backend"):
        attention_forward(q, k, v, backend="tpu")
    t = [nt.Tensor(x) for x in (q, k, v)]
    with pytest.raises(NotImplementedError, match="does not support dropout"):
        fused_attention(*t, dropout_p=0.1)


def test_auto_backend_follows_the_environment(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")
    assert resolve_backend("auto") == "numpy"
    monkeypatch.delenv("NUMTRANS_BACKEND")
    assert resolve_backend("auto") == ("cpu" if backends.is_available("cpu") else "numpy")


@needs_cpu
def test_unknown_instruction_set_is_refused():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="unknown instruction set"):
        attention_forward(q, k, v, isa="sse9")
    attention_forward(q, k, v, isa="baseline")
    assert last_isa() == "baseline"


# --------------------------------------------------------------------------- cpu vs numpy
@needs_cpu
@given(
    seed=st.integers(0, 2**31),
    causal=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_cpu_and_numpy_backends_agree(seed, causal, dtype):
    q, k, v = qkv(N=9, M=9, D=5, Dv=3, dtype=dtype, seed=seed)
    dout = np.random.default_rng(seed).standard_normal((2, 3, 9, 3)).astype(dtype)
    res = {}
    for b in ("numpy", "cpu"):
        out, lse = attention_forward(q, k, v, is_causal=causal, backend=b)
        res[b] = (
            out,
            lse,
            *attention_backward(dout, q, k, v, out, lse, is_causal=causal, backend=b),
        )
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for a, b in zip(res["numpy"], res["cpu"]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@needs_cpu
@pytest.mark.parametrize("shape", [(0, 2, 3, 4, 5), (2, 2, 0, 4, 5), (1, 2, 3, 0, 5)])
def test_empty_dimensions(shape):
    B, H, N, M, D = shape
    q, k, v = qkv(B, H, N, M, D)
    out, lse = attention_forward(q, k, v)
    assert out.shape == (B, H, N, D) and lse.shape == (B, H, N)
    assert np.all(out == 0) and np.all(np.isneginf(lse))  # M = 0: no keys at all
    dq, dk, dv = attention_backward(np.ones_like(out), q, k, v, out, lse)
    assert dq.shape == q.shape and dk.shape == k.shape and dv.shape == v.shape
    assert not dq.any() and not dk.any() and not dv.any()


@needs_cpu
@pytest.mark.parametrize("isa", ISAS)
def test_nan_propagates_instead_of_being_masked(isa):
    q, k, v = qkv(1, 1, 6, 9, 8)
    q[0, 0, 2, 3] = np.nan  # one query row
    k[0, 0, 4, 1] = np.nan  # one key: every query sees it
    out, lse = attention_forward(q, k, v, isa=isa)
    assert np.isnan(out).all() and np.isnan(lse).all()
    q, k, v = qkv(1, 1, 6, 9, 8)
    q[0, 0, 2, 3] = np.nan
    out, lse = attention_forward(q, k, v, isa=isa)
    assert np.isnan(out[0, 0, 2]).all() and not np.isnan(np.delete(out, 2, axis=2)).any()


# -------------------------------------------------------------------------------- threads
@needs_cpu
@pytest.mark.parametrize("causal", [False, True])
def test_results_identical_for_one_and_two_threads(causal):
    q, k, v = qkv(B=2, H=2, N=300, M=260, D=64, dtype=np.float32)
    dout = np.ones((2, 2, 300, 64), np.float32)
    before = nt.backends.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            nt.set_num_threads(n)
            out, lse = attention_forward(q, k, v, is_causal=causal)
            results.append(
                (out, lse, *attention_backward(dout, q, k, v, out, lse, is_causal=causal))
            )
    finally:
        nt.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------- autograd
@needs_cpu
@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_through_the_native_backward(causal):
    q, k, v = (nt.Tensor(x, requires_grad=True) for x in qkv(1, 2, 4, 6, 3, Dv=2))
    mask = None if causal else np.array([True, True, False, True, False, True])
    assert nt.gradcheck(lambda a, b, c: fused_attention(a, b, c, mask, causal), (q, k, v))


@needs_cpu
def test_fused_attention_broadcasts_like_sdpa():
    """3-D inputs and broadcast batch dims: gradients come back in each input's shape."""
    rng = np.random.default_rng(1)
    q = nt.Tensor(rng.standard_normal((3, 5, 4)), requires_grad=True)
    k = nt.Tensor(rng.standard_normal((1, 6, 4)), requires_grad=True)
    v = nt.Tensor(rng.standard_normal((6, 2)), requires_grad=True)
    mask = np.tril(np.ones((5, 6), bool))
    assert nt.gradcheck(lambda a, b, c: fused_attention(a, b, c, attn_mask=mask), (q, k, v))


@needs_cpu
def test_sdpa_dispatches_to_the_native_kernel(monkeypatch):
    from numtrans.functional.attention import scaled_dot_product_attention as sdpa

    monkeypatch.delenv("NUMTRANS_BACKEND", raising=False)
    q, k, v = (nt.Tensor(x.astype(np.float32), requires_grad=True) for x in qkv())
    grads = {}
    for backend in ("numpy", "cpu", "auto"):
        for t in (q, k, v):
            t.grad = None
        out = sdpa(q, k, v, is_causal=True, backend=backend)
        out.sum().backward()
        grads[backend] = (out.data, q.grad, k.grad, v.grad)
    for a, b, c in zip(grads["numpy"], grads["cpu"], grads["auto"]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(c, b)  # auto chose the native kernel


# ------------------------------------------------------------------------------- PyTorch
@needs_cpu
@pytest.mark.parametrize("N,M", [(5, 9), (9, 5), (1, 17), (64, 64)])
@pytest.mark.parametrize("mode", ["causal", "bool", "additive", "none"])
def test_matches_torch_sdpa(N, M, mode):
    torch = pytest.importorskip("torch")
    q, k, v = qkv(2, 2, N, M, 16, seed=N * M)
    rng = np.random.default_rng(3)
    mask = None
    if mode == "bool":
        mask = rng.random((2, 1, N, M)) < 0.7
        mask[..., 0] = True  # torch's math path gives NaN for empty rows; keep one key
    elif mode == "additive":
        mask = rng.standard_normal((N, M))
    causal = mode == "causal"  # torch is top-left aligned, like numtrans
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    tmask = None if mask is None else torch.tensor(mask)
    tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, tmask, is_causal=causal)
    tout.backward(torch.ones_like(tout))
    out, lse = attention_forward(q, k, v, mask, causal)
    grads = attention_backward(np.ones_like(out), q, k, v, out, lse, mask, causal)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    for g, t in zip(grads, (tq, tk, tv)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-11, atol=1e-11)
