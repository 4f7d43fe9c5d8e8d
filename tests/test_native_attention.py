"""Property tests: the native fused attention against a float64 NumPy oracle, forward and backward.

Shapes are drawn around the kernels' tile edges (query blocks of 64/128, key blocks of 128,
vectors of 4/8/16 lanes), masks include fully masked rows, -inf and huge negative values, and
inputs come in strided, reversed and read-only layouts.

Tolerances, with ``size`` = max |oracle| and ``s`` = the largest |logit| that matters (within
30 of its row's maximum: rounding a logit by one ulp moves the result by about eps x |s|):

* float64: error <= (1e-12 + 8 eps64 |s|) x size (outputs), 1e-11 + ... (gradients);
* float32: FlashAttention's rule, error <= 2x (outputs) / 3x (gradients) the error of the same
  oracle run in float32, plus a floor of 4 eps32 (1 + |s|) x size (8 for gradients).

out, lse and dq are checked row by row, each query row with the |s| of its own logits; dk and dv
(sums over every query) with the largest.

Every instruction set this CPU can run is tested ("avx512", "avx2", "baseline"), and the plain
scalar C++ version too. ``HYPOTHESIS_PROFILE=slow`` explores many more cases.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from numtrans import backends
from numtrans.native import attention_backward, attention_forward

pytestmark = pytest.mark.skipif(not backends.is_available("cpu"), reason=backends.reason("cpu"))

ISAS = backends.get("cpu").attention_isas().split(",") if backends.is_available("cpu") else []
# (kernel, isa): every fast variant usable here, and the scalar lesson version.
VARIANTS = [("fast", isa) for isa in ISAS] + [("reference", "")]
EDGES = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129]


# --------------------------------------------------------------------------------- the oracle
def oracle(q, k, v, mask, causal, scale, dout, dtype=np.float64):
    """((out, lse, dq, dk, dv), (s_max, s_rows)) by the textbook formulas, in `dtype`, safe
    softmax; s_rows (B, H, N) is each query row's largest |logit| that carries weight."""
    q, k, v, dout = (np.asarray(x, dtype=dtype) for x in (q, k, v, dout))
    s = scale * q @ np.swapaxes(k, -1, -2)
    N, M = s.shape[-2:]
    allowed = np.ones((N, M), bool)
    if causal:
        allowed = np.tril(allowed)
    if mask is not None and mask.dtype == bool:
        allowed = allowed & mask
    elif mask is not None:
        s = s + mask.astype(dtype)
    s = np.where(allowed, s, -np.inf)
    m = s.max(-1, keepdims=True)
    empty = np.isneginf(m)
    e = np.exp(s - np.where(empty, 0, m))
    l = e.sum(-1, keepdims=True)
    p = e / np.where(empty, 1, l)
    out = p @ v
    near = np.isfinite(s) & (s >= m - 30)  # the logits that carry weight
    s_rows = np.max(np.abs(np.where(near, s, 0.0)), axis=-1, initial=0.0)  # (B, H, N)
    s_eff = (float(np.max(s_rows, initial=0.0)), s_rows)
    with np.errstate(divide="ignore"):
        lse = np.where(empty, -np.inf, m + np.log(np.where(empty, 1, l)))[..., 0]
    dv = np.swapaxes(p, -1, -2) @ dout
    ds = p * (dout @ np.swapaxes(v, -1, -2) - (dout * out).sum(-1, keepdims=True))
    return (out, lse, scale * ds @ k, scale * np.swapaxes(ds, -1, -2) @ q, dv), s_eff


def max_err(x, ref):
    finite = np.isfinite(ref)
    assert np.array_equal(np.isfinite(x), finite), "non-finite entries differ"
    assert np.array_equal(x[~finite], ref[~finite])
    return float(np.max(np.abs(x[finite] - ref[finite]), initial=0.0))


def row_err(x, ref):
    """Largest |x - ref| in each query row, shape (B, H, N); non-finite entries must match."""
    max_err(x, ref)  # the non-finite checks
    finite = np.isfinite(ref)
    d = np.abs(np.where(finite, x, 0.0) - np.where(finite, ref, 0.0))
    return d if d.ndim == 3 else np.max(d, axis=-1, initial=0.0)


def check_close(got, exact, naive32, s_eff, dtype, names=("out", "lse", "dq", "dk", "dv")):
    """Compare native results with the float64 oracle under the tolerance policy above.

    out, lse and dq belong to one query row each, so each row gets the floor of its own logits:
    a row whose logits are all near -3e38 (a mask of finfo.min) is ill-conditioned, and its huge
    floor must not excuse the other rows. dk and dv sum over every row and use the largest."""
    s_max, s_rows = s_eff
    for i, (name, x, ref) in enumerate(zip(names, got, exact)):
        size = max(float(np.max(np.abs(ref[np.isfinite(ref)]), initial=0.0)), 1.0)
        x = np.asarray(x, np.float64)
        err, s = (row_err(x, ref), s_rows) if i < 3 else (max_err(x, ref), s_max)
        if dtype == np.float64:
            tol = (1e-12 if i < 2 else 1e-11) + 8 * np.finfo(np.float64).eps * s
            assert np.all(err <= tol * size), f"{name}: error {np.max(err):.3g}"
        else:
            base = max_err(np.asarray(naive32[i], np.float64), ref)
            factor, floor = (2.0, 4.0) if i < 2 else (3.0, 8.0)
            floor = floor * np.finfo(np.float32).eps * (1 + s) * size
            assert np.all(err <= factor * base + floor), (
                f"{name}: {np.max(err):.3g} vs naive {base:.3g}"
            )


# ------------------------------------------------------------------------------ the problems
sizes = st.one_of(st.integers(1, 40), st.sampled_from(EDGES))
# Query blocks grow to 128 rows from N = 512 on: lengths around 256 and 512 reach that code.
lengths = st.one_of(sizes, st.sampled_from([255, 256, 257, 511, 512, 513]))


@st.composite
def problems(draw, masks=True):
    B, H = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    N, M, D = draw(lengths), draw(lengths), draw(sizes)
    Dv = draw(st.one_of(st.just(D), sizes))
    assume(B * H * N * M * max(D, Dv) <= 3_000_000)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q = rng.standard_normal((B, H, N, D))
    k = rng.standard_normal((B, H, M, D))
    v = rng.standard_normal((B, H, M, Dv))
    dout = rng.standard_normal((B, H, N, Dv))
    if draw(st.booleans()):  # large logits: |s| ~ 1e3 needs the running-max subtraction
        q *= 40.0
    scale = draw(st.one_of(st.none(), st.just(0.0), st.floats(0.01, 2.0)))
    kind = draw(
        st.sampled_from(["none", "causal", "bool", "padding", "additive"] if masks else ["none"])
    )
    causal, mask = kind == "causal", None
    if kind == "bool":  # random density, sometimes whole rows False, broadcast shapes
        shape = draw(st.sampled_from([(N, M), (B, 1, N, M), (1, H, N, M), (B, H, N, M)]))
        mask = rng.random(shape) < draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    elif kind == "padding":  # (B, 1, 1, M): keys past each length are masked; length 0 allowed
        valid = rng.integers(0, M + 1, size=B)
        mask = (np.arange(M)[None, :] < valid[:, None])[:, None, None, :]
    elif kind == "additive":
        shape = draw(st.sampled_from([(N, M), (B, H, N, M), (1, 1, 1, M)]))
        mask = rng.standard_normal(shape) * 3
        special = draw(st.sampled_from([-np.inf, -1e9, float(np.finfo(np.float32).min)]))
        mask[rng.random(shape) < 0.3] = special
        mask = mask.astype(dtype)
    return dict(q=q, k=k, v=v, dout=dout, mask=mask, causal=causal, scale=scale, dtype=dtype)


def layout(x, how):
    """The same values in another memory layout."""
    if how == "transposed":  # (B, N, H, D) memory seen as (B, H, N, D), like split heads
        return np.ascontiguousarray(np.swapaxes(x, 1, 2)).swapaxes(1, 2)
    if how == "strided":  # every other element of a bigger array
        big = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        big[..., ::2] = x
        return big[..., ::2]
    if how == "reversed":
        return np.ascontiguousarray(x[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]
    if how == "fortran":
        return np.asfortranarray(x)
    if how == "readonly":
        x = x.copy()
        x.flags.writeable = False
    return x


def run(p, kernel="fast", isa="", how="contiguous"):
    dt = p["dtype"]
    q, k, v, dout = (layout(p[n].astype(dt), how) for n in ("q", "k", "v", "dout"))
    kw = dict(attn_mask=p["mask"], is_causal=p["causal"], scale=p["scale"], kernel=kernel, isa=isa)
    out, lse = attention_forward(q, k, v, **kw)
    assert out.dtype == dt and lse.dtype == dt
    grads = attention_backward(dout, q, k, v, out, lse, **kw)
    return (out, lse, *grads)


def expected(p):
    D = p["q"].shape[-1]
    scale = 1 / np.sqrt(D) if p["scale"] is None else p["scale"]
    args = (p["q"], p["k"], p["v"], p["mask"], p["causal"], scale, p["dout"])
    exact, s_eff = oracle(*args)
    naive32 = oracle(*args, dtype=np.float32)[0] if p["dtype"] == np.float32 else None
    return exact, naive32, s_eff


# ----------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("kernel,isa", VARIANTS)
@given(p=problems())
def test_matches_oracle(kernel, isa, p):
    got = run(p, kernel, isa)
    check_close(got, *expected(p), p["dtype"])
    for x in got:
        assert not np.isnan(x).any()


@given(
    p=problems(), how=st.sampled_from(["transposed", "strided", "reversed", "fortran", "readonly"])
)
def test_any_layout_gives_identical_results(p, how):
    """Inputs are read through their strides: the bits must not depend on the layout."""
    for a, b in zip(run(p, how=how), run(p)):
        np.testing.assert_array_equal(a, b)


@given(p=problems())
def test_fully_masked_rows_give_exact_zeros(p):
    p["causal"] = False
    N, M = p["q"].shape[2], p["k"].shape[2]
    mask = np.ones((N, M), bool)
    mask[::3] = False  # every third query sees nothing
    p["mask"] = mask
    out, lse, dq, dk, dv = run(p)
    assert np.all(out[:, :, ::3] == 0) and np.all(dq[:, :, ::3] == 0)
    assert np.all(np.isneginf(lse[:, :, ::3]))
    if N < 2:  # no query sees anything: k and v get no gradient
        assert np.all(dk == 0) and np.all(dv == 0)
    check_close((out, lse, dq, dk, dv), *expected(p), p["dtype"])


@given(p=problems(masks=False))
def test_single_key_returns_its_value(p):
    """M = 1: softmax over one key is 1, so every output row is that key's value."""
    p["k"], p["v"] = p["k"][:, :, :1], p["v"][:, :, :1]
    out, lse, dq, *_ = run(p)
    np.testing.assert_array_equal(out, np.broadcast_to(p["v"].astype(p["dtype"]), out.shape))
    # The weights cannot move (P = 1 whatever q is), so dq is 0 up to rounding in dP - D.
    tol = 1e-12 if p["dtype"] == np.float64 else 1e-5
    assert np.abs(dq).max() <= tol * max(1.0, np.abs(p["k"]).max() * np.abs(p["dout"]).max())


@given(p=problems())
def test_zero_scale_averages_the_visible_values(p):
    """scale = 0: every visible key gets the same weight (an additive mask still biases)."""
    if p["mask"] is not None and p["mask"].dtype != bool:
        p["mask"] = np.isfinite(p["mask"])  # keep which keys are visible, drop the bias
    p["scale"] = 0.0
    out = run(p)[0]
    exact = expected(p)[0]
    N, M = out.shape[2], p["k"].shape[2]
    allowed = np.ones((N, M), bool) if not p["causal"] else np.tril(np.ones((N, M), bool))
    if p["mask"] is not None:
        allowed = allowed & p["mask"]
    allowed = np.broadcast_to(allowed, out.shape[:2] + (N, M))
    count = allowed.sum(-1, keepdims=True)
    mean = (allowed @ p["v"]) / np.maximum(count, 1)
    tol = 1e-12 if p["dtype"] == np.float64 else 2e-6
    np.testing.assert_allclose(out, mean, atol=tol * max(1, np.abs(mean).max()), rtol=0)
    np.testing.assert_allclose(exact[0], mean, atol=1e-12 * max(1, np.abs(mean).max()), rtol=0)
