"""Property tests: the fused GELU, LayerNorm and softmax cross-entropy kernels against the NumPy
reference functions, forward and backward, in float32 and float64, for every instruction set
this CPU runs ("avx512", "avx2", "baseline").

The reference is the library's own NumPy path (``backends.use("numpy")``), run in the same
dtype. Row lengths are drawn around the vector widths (4, 8, 16 lanes) so that partial last
vectors are covered; LayerNorm rows get a large common offset (a one-pass variance would lose
every digit there); the loss gets ignored targets, label smoothing, -inf logits and every
reduction. Tolerances are a few float32 rounding errors of the values compared (float32), and
1e-12 relative (float64). A wrong formula, a missed tail lane or a wrong row scale shows as an
error of order 1.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numtrans as nt
import numtrans.functional as F
from numtrans import backends

pytestmark = pytest.mark.skipif(not backends.is_available("cpu"), reason=backends.reason("cpu"))

ISAS = backends.get("cpu").attention_isas().split(",") if backends.is_available("cpu") else []
COLS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 130]
DTYPES = [np.float32, np.float64]
EPS = {np.float32: float(np.finfo(np.float32).eps), np.float64: float(np.finfo(np.float64).eps)}


def _kernels():
    return backends.get("cpu")


def _reference(fn, *tensors):
    """(value, grads) of fn(*tensors) on the NumPy path, with loss = sum(value * weights)."""
    with backends.use("numpy"):
        return _run(fn, *tensors)


def _run(fn, *tensors):
    for t in tensors:
        t.grad = None
    out = fn(*tensors)
    rng = np.random.default_rng(7)
    weights = rng.standard_normal(out.shape).astype(out.dtype)
    (out * nt.tensor(weights)).sum().backward()
    return out.data, [None if t.grad is None else np.array(t.grad) for t in tensors]


def _close(got, ref, dtype, scale, what):
    tol = (64 * EPS[dtype] if dtype == np.float32 else 1e-12) * scale
    err = np.max(np.abs(np.asarray(got, np.float64) - ref), initial=0.0)
    assert err <= tol, f"{what}: max error {err:.3g} > {tol:.3g}"


# ------------------------------------------------------------------------------------ GELU --
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
@given(n=st.sampled_from([0, 1, 5, 8, 17, 100, 1000]), scale=st.sampled_from([0.1, 1.0, 4.0, 12.0]),
       seed=st.integers(0, 2**31))  # fmt: skip
def test_gelu_kernel_matches_reference(dtype, isa, n, scale, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * scale).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    y, used = _kernels().gelu_forward(x, isa)
    dx, used_b = _kernels().gelu_backward(g, x, isa)
    assert used == used_b == isa and y.dtype == dtype and dx.dtype == dtype
    xt = nt.tensor(x, requires_grad=True)
    with backends.use("numpy"):
        ref = F.gelu(xt)
        ref.backward(g)
    # elementwise: compare each value on its own scale (|y| + |x| / 20 covers where Phi is tiny
    # and the float32 reference's 1 + erf has rounded it to 0)
    y_tol = np.abs(ref.data) + 0.05 * np.abs(x) + 1e-30
    # d = Phi(x) + x phi(x) cancels for x < 0: bound by the size of its terms
    grad = np.asarray(xt.grad)
    d_tol = np.abs(grad) + np.abs(g) * (0.05 + 0.4 * np.abs(x) * np.exp(-0.5 * x * x)) + 1e-30
    k = 8 * EPS[np.float32] if dtype == np.float32 else 1e-13
    assert np.all(np.abs(y - ref.data) <= k * y_tol)
    assert np.all(np.abs(dx - grad) <= k * d_tol)


def test_gelu_float32_keeps_the_lower_tail():
    """The kernel's Phi = erfc(-x / sqrt 2) / 2 keeps digits where 1 + erf cancels."""
    import math

    x = np.array([-9.0, -7.5, -6.0, -5.0], np.float32)
    y, _ = _kernels().gelu_forward(x)
    exact = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x.astype(np.float64)])
    np.testing.assert_allclose(y, exact, rtol=1e-5)


# ------------------------------------------------------------------------------- LayerNorm --
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
@given(rows=st.sampled_from([1, 2, 5, 33]), cols=st.sampled_from(COLS),
       affine=st.sampled_from(["both", "weight", "none"]), offset=st.sampled_from([0.0, 100.0]),
       seed=st.integers(0, 2**31))  # fmt: skip
def test_layer_norm_kernel_matches_reference(dtype, isa, rows, cols, affine, offset, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, cols)) * 3 + offset).astype(dtype)
    w = rng.standard_normal(cols).astype(dtype) if affine != "none" else None
    b = rng.standard_normal(cols).astype(dtype) if affine == "both" else None
    g = rng.standard_normal((rows, cols)).astype(dtype)
    y, mean, rstd, used = _kernels().layer_norm_forward(x, w, b, 1e-5, isa)
    dx, dw, db, _ = _kernels().layer_norm_backward(g, x, w, mean, rstd, True, w is not None,
                                                   b is not None, isa)  # fmt: skip
    assert used == isa and y.dtype == dtype
    ts = [nt.tensor(a, requires_grad=True) for a in (x, w, b) if a is not None]
    with backends.use("numpy"):
        ref = F.layer_norm(ts[0], (cols,), *ts[1:], eps=1e-5)
        ref.backward(g)
    # x - mean loses |offset| * eps before normalising: that is the float32 floor here
    amp = 1.0 + (offset / 3.0 if dtype == np.float32 else 0.0)
    wmax = 1.0 if w is None else float(np.abs(w).max()) + 1.0
    _close(y, ref.data, dtype, amp * wmax * (np.sqrt(cols) + 2), "y")
    gscale = amp * wmax * float(np.abs(g).max()) * cols
    _close(dx, ts[0].grad, dtype, gscale, "dx")
    if w is not None:
        _close(dw, ts[1].grad, dtype, amp * float(np.abs(g).max()) * rows * np.sqrt(cols), "dw")
    if b is not None:
        _close(db, ts[2].grad, dtype, float(np.abs(g).max()) * rows, "db")


def test_layer_norm_threads_agree_and_ignore_unneeded_gradients():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 130)).astype(np.float32)  # above the threading threshold
    w, b = np.ones(130, np.float32), np.zeros(130, np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    kern, before = _kernels(), _kernels().get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            kern.set_num_threads(threads)
            y, mean, rstd, _ = kern.layer_norm_forward(x, w, b, 1e-5)
            results.append((y, *kern.layer_norm_backward(g, x, w, mean, rstd)[:3]))
    finally:
        kern.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-5 * np.abs(one).max())
    dx, dw, db, _ = kern.layer_norm_backward(g, x, w, mean, rstd, False, True, False)
    assert dx is None and db is None and dw.shape == (130,)


# ---------------------------------------------------------------------------- cross-entropy --
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
@given(rows=st.sampled_from([1, 3, 17, 64]), cols=st.sampled_from(COLS),
       smoothing=st.sampled_from([0.0, 0.1]), reduction=st.sampled_from(["mean", "sum", "none"]),
       ignore=st.sampled_from([0.0, 0.3, 1.0]), masked=st.booleans(), seed=st.integers(0, 2**31))  # fmt: skip
def test_cross_entropy_kernel_matches_reference(dtype, isa, rows, cols, smoothing, reduction,
                                                ignore, masked, seed):  # fmt: skip
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, cols)) * 4).astype(dtype)
    t = rng.integers(0, cols, rows)
    t[rng.random(rows) < ignore] = -100
    if masked and smoothing == 0.0 and cols > 1:  # vocabulary entries masked out with -inf
        keep = np.where(t >= 0, t, 0)[:, None]  # the target (or class 0) stays finite
        hole = (rng.random((rows, cols)) < 0.3) & (np.arange(cols) != keep)
        x[hole] = -np.inf
    loss, lse, used = _kernels().cross_entropy_forward(x, t, -100, smoothing, isa)
    assert used == isa
    s = rng.standard_normal(rows).astype(dtype) * (t != -100)
    dx, _ = _kernels().cross_entropy_backward(x, t, lse, s, smoothing, isa)
    # the same through F.cross_entropy, fused and reference, with every reduction
    xt = nt.tensor(x, requires_grad=True)
    fused_val, (fused_grad,) = _run(
        lambda a: F.cross_entropy(a, t, reduction=reduction, label_smoothing=smoothing), xt
    )
    ref_val, (ref_grad,) = _reference(
        lambda a: F.cross_entropy(a, t, reduction=reduction, label_smoothing=smoothing), xt
    )
    _close(fused_val, ref_val, dtype, 16 * max(rows, 1) * (1 + np.abs(ref_val).max()), "loss")
    _close(fused_grad, ref_grad, dtype, 8.0, "dlogits")
    # the raw kernel against the reference formula
    with np.errstate(invalid="ignore"):
        p = np.exp(x.astype(np.float64) - lse[:, None])
    onehot = np.zeros((rows, cols))
    onehot[np.arange(rows)[t != -100], t[t != -100]] = 1
    expect = s[:, None] * (p - smoothing / cols - (1 - smoothing) * onehot)
    _close(dx, expect, dtype, 8.0 * (np.abs(s).max(initial=0) + 1), "kernel dlogits")
    assert np.all(loss[t == -100] == 0)


# ------------------------------------------------------------------------------ dispatching --
def test_functional_ops_use_the_kernels_unless_numpy_is_chosen(monkeypatch):
    from numtrans.native import layers

    calls = []
    real = backends.get("cpu")

    class Spy:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real, name)

    monkeypatch.setattr(layers, "_kernels", lambda: Spy())
    x = nt.randn(4, 8, requires_grad=True)
    F.cross_entropy(F.layer_norm(F.gelu(x), (8,)), np.array([0, 1, 2, 3])).backward()
    assert calls == ["gelu_forward", "layer_norm_forward", "cross_entropy_forward",
                     "cross_entropy_backward", "layer_norm_backward", "gelu_backward"]  # fmt: skip
    calls.clear()
    with backends.use("numpy"):
        F.cross_entropy(F.layer_norm(F.gelu(x), (8,)), np.array([0, 1, 2, 3])).backward()
    assert calls == []
    # dtypes the kernels do not take stay in NumPy, and so does the tanh GELU
    F.gelu(nt.tensor(np.ones(3, np.float16)))
    F.gelu(x, approximate="tanh")
    assert calls == []


def test_fused_layer_norm_gradcheck_float64():
    rng = np.random.default_rng(3)
    x = nt.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    w = nt.tensor(rng.standard_normal(5), requires_grad=True)
    b = nt.tensor(rng.standard_normal(5), requires_grad=True)
    assert backends.fused_layers(np.float64) is not None
    assert nt.gradcheck(lambda a, c, d: F.layer_norm(a, (5,), c, d), (x, w, b))
    assert nt.gradcheck(lambda a: F.gelu(a), (x,))
    t = np.array([1, -100, 4])
    assert nt.gradcheck(lambda a: F.cross_entropy(a, t, label_smoothing=0.2), (x,))


def test_kernels_refuse_bad_input():
    k = _kernels()
    with pytest.raises(ValueError, match="float32 or float64"):
        k.gelu_forward(np.ones(3, np.int64))
    with pytest.raises(ValueError, match="out of range"):
        k.cross_entropy_forward(np.ones((2, 3), np.float32), np.array([0, 3]), -100, 0.0)
    with pytest.raises(ValueError, match="weight: wrong size"):
        k.layer_norm_forward(np.ones((2, 3)), np.ones(4), None, 1e-5)
    with pytest.raises(ValueError, match="unknown instruction set"):
        k.gelu_forward(np.ones(3, np.float32), "sse9")
