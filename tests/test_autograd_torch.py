"""PyTorch as an oracle: the value and the gradient of every op match ``torch`` in float64.

Skipped as a whole when torch is not installed. Where the formula is the same as PyTorch's the
tolerance is tight (1e-12 relative); ops built on erf allow for its last-ulp differences.
Each case draws shapes with Hypothesis and one random upstream gradient ``v``; both libraries
backpropagate ``v`` and every input's gradient is compared.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
from conftest import distinct, rand64, t64
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numtrans as nt
import numtrans.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
shapes_nd = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
TIGHT = dict(rtol=1e-12, atol=1e-13)


def compare(f_nt, f_torch, arrays, rng, rtol=1e-12, atol=1e-13, grad_of=None):
    """Run both libraries on float64 copies of ``arrays``; compare outputs and all gradients.
    ``grad_of``: indices of the arrays that require grad (default: all)."""
    grad_of = range(len(arrays)) if grad_of is None else grad_of
    xs = [t64(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    ts = [
        torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=i in grad_of)
        for i, a in enumerate(arrays)
    ]
    out_n, out_t = f_nt(*xs), f_torch(*ts)
    assert out_n.shape == tuple(out_t.shape)
    np.testing.assert_allclose(out_n.data, out_t.detach().numpy(), rtol=rtol, atol=atol)
    v = rng.standard_normal(out_n.shape)
    out_n.backward(v)
    out_t.backward(torch.from_numpy(np.asarray(v)))
    for i in grad_of:
        got = np.zeros(xs[i].shape) if xs[i].grad is None else xs[i].grad
        want = np.zeros(xs[i].shape) if ts[i].grad is None else ts[i].grad.numpy()
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"gradient {i}")


# ----------------------------------------------------------------------------- cases
# Each case: (data, rng) -> (numtrans fn, torch fn, arrays[, tolerances]).
CASES = {}


def case(name):
    def register(fn):
        CASES[name] = fn
        return fn

    return register


def _pair(data, rng, left=rand64, right=rand64):
    (sa, sb), _ = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), label="shapes"
    )
    return left(rng, sa), right(rng, sb)


def _nonzero(rng, shape):
    return rng.uniform(0.3, 2, shape) * rng.choice([-1.0, 1.0], shape)


def _positive(rng, shape):
    return rng.uniform(0.3, 2, shape)


for _name, _op in [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul)]:

    @case(_name)
    def _binary(data, rng, op=_op):
        return op, op, list(_pair(data, rng))


@case("div")
def _div(data, rng):
    return operator.truediv, operator.truediv, list(_pair(data, rng, right=_nonzero))


@case("pow tensor ** tensor")
def _pow(data, rng):
    return operator.pow, operator.pow, list(_pair(data, rng, left=_positive))


@case("scalars on either side")
def _scalars(data, rng):
    s = data.draw(st.sampled_from([0.5, -2.0, 3]), label="scalar")
    f = lambda x: (s + x) * (x - s) / s - s / (x * x + 1) + s * x - x**3 + 2.0**x + abs(s) ** x
    return f, f, [rand64(rng, data.draw(shapes, label="shape"))]


@case("neg")
def _neg(data, rng):
    return operator.neg, operator.neg, [rand64(rng, data.draw(shapes))]


@case("pow constant")
def _pow_const(data, rng):
    p = data.draw(st.sampled_from([2, 3, -1, 0.5, -1.5]), label="exponent")
    return (lambda x: x**p), (lambda x: x**p), [_positive(rng, data.draw(shapes))]


@case("matmul batched")
def _matmul(data, rng):
    (ba, bb), _ = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3), label="batch"
    )
    m, k, n = (data.draw(st.integers(1, 3)) for _ in range(3))
    return operator.matmul, operator.matmul, [rand64(rng, ba + (m, k)), rand64(rng, bb + (k, n))]


@case("matmul 1-D")
def _matmul_1d(data, rng):
    sa, sb = data.draw(
        st.sampled_from(
            [
                ((3,), (3, 2)),
                ((2, 3), (3,)),
                ((3,), (2, 3, 4)),
                ((2, 2, 3), (3,)),
                ((3,), (3, 1)),
                ((3,), (3,)),
            ]
        ),
        label="shapes",
    )
    return operator.matmul, operator.matmul, [rand64(rng, sa), rand64(rng, sb)]


@st.composite
def _axis_spec(draw, shape):
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, unique=True)))


def _torch_dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


for _name in ["sum", "mean", "max", "min", "var"]:

    @case(_name)
    def _reduction(data, rng, name=_name):
        shape = data.draw(shapes_nd, label="shape")
        axis = data.draw(_axis_spec(shape), label="axis")
        keep = data.draw(st.booleans(), label="keepdims")
        dims = _torch_dims(axis, len(shape))
        if name == "var":
            n = int(np.prod([shape[d] for d in ((dims,) if isinstance(dims, int) else dims)]))
            c = data.draw(st.sampled_from([0, 1])) if n > 1 else 0
            f_nt = lambda x: x.var(axis=axis, keepdims=keep, correction=c)
            f_t = lambda x: torch.var(x, dim=dims, keepdim=keep, correction=c)
            return f_nt, f_t, [rand64(rng, shape)]
        f_nt = lambda x: getattr(x, name)(axis=axis, keepdims=keep)
        torch_name = {"max": "amax", "min": "amin"}.get(name, name)
        f_t = lambda x: getattr(torch, torch_name)(x, dim=dims, keepdim=keep)
        values = distinct(rng, shape) if name in ("max", "min") else rand64(rng, shape)
        return f_nt, f_t, [values]


@case("max/min with ties (amax/amin share the gradient)")
def _ties(data, rng):
    a = rng.integers(0, 3, size=data.draw(shapes_nd)).astype(float)
    return (
        lambda x: x.max(axis=-1) - x.min(),
        lambda x: torch.amax(x, dim=-1) - torch.amin(x),
        [a],
    )


UNARY = {
    "exp": (nt.exp, torch.exp, rand64),
    "log": (nt.log, torch.log, _positive),
    "sqrt": (nt.sqrt, torch.sqrt, _positive),
    "abs": (lambda x: x.abs(), torch.abs, _nonzero),
    "tanh": (nt.tanh, torch.tanh, rand64),
    "sigmoid": (F.sigmoid, torch.sigmoid, lambda r, s: rand64(r, s, -8, 8)),
    "relu": (F.relu, torch.relu, _nonzero),
}
for _name, (_f, _t, _dom) in UNARY.items():

    @case(_name)
    def _unary(data, rng, f=_f, t=_t, dom=_dom):
        return f, t, [dom(rng, data.draw(shapes))]


@case("gelu exact (erf)")
def _gelu(data, rng):
    a = rand64(rng, data.draw(shapes), -6, 6)
    return F.gelu, TF.gelu, [a], dict(rtol=1e-12, atol=1e-14)


@case("gelu tanh")
def _gelu_tanh(data, rng):
    a = rand64(rng, data.draw(shapes), -6, 6)
    return (
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: TF.gelu(x, approximate="tanh"),
        [a],
        dict(rtol=1e-12, atol=1e-14),
    )


@case("clip")
def _clip(data, rng):
    lo, hi = data.draw(st.sampled_from([(-0.5, 0.5), (None, 0.2), (-0.1, None)]), label="bounds")
    a = rand64(rng, data.draw(shapes))
    return (lambda x: x.clip(lo, hi)), (lambda x: torch.clamp(x, lo, hi)), [a]


for _name in ["softmax", "log_softmax"]:

    @case(_name)
    def _softmax(data, rng, name=_name):
        shape = data.draw(shapes_nd)
        axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
        scale = data.draw(st.sampled_from([1.0, 300.0]), label="scale")  # large: stability
        return (
            lambda x: getattr(F, name)(x, axis),
            lambda x: getattr(torch, name)(x, dim=axis),
            [rand64(rng, shape) * scale],
        )


@case("softmax of a partly masked row")
def _masked_softmax(data, rng):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=4))
    mask = rng.random(shape) < 0.5
    mask[..., 0] = False  # at least one visible entry per row (torch gives NaN otherwise)
    return (
        lambda x: F.softmax(x.masked_fill(mask, -np.inf), -1),
        lambda x: torch.softmax(x.masked_fill(torch.from_numpy(mask), -np.inf), -1),
        [rand64(rng, shape)],
    )


@case("reshape / permute / transpose / unsqueeze / squeeze / expand / T")
def _shape_ops(data, rng):
    shape = data.draw(shapes_nd)
    perm = data.draw(st.permutations(range(len(shape))), label="perm")
    d0 = data.draw(st.integers(0, len(shape) - 1), label="d0")

    def f_nt(x):
        y = x.permute(tuple(perm)).reshape(-1, 1).unsqueeze(0).squeeze(0)
        z = x.transpose(d0, -1).unsqueeze(1).expand((2,) + (-1,) * (x.ndim + 1))
        return y.sum() * z + x.T.flatten().sum()

    def f_t(x):
        y = x.permute(*perm).reshape(-1, 1).unsqueeze(0).squeeze(0)
        z = x.transpose(d0, -1).unsqueeze(1).expand((2,) + (-1,) * (x.ndim + 1))
        return y.sum() * z + x.permute(*reversed(range(x.ndim))).flatten().sum()

    return f_nt, f_t, [rand64(rng, shape)]


@case("getitem basic")
def _getitem_basic(data, rng):
    shape = data.draw(shapes_nd)
    # torch has no negative slice steps; keep to positive ones
    index = data.draw(
        hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True).filter(
            lambda ix: all(
                not isinstance(i, slice) or (i.step or 1) > 0
                for i in (ix if isinstance(ix, tuple) else (ix,))
            )
        ),
        label="index",
    )
    return (lambda x: x[index]), (lambda x: x[index]), [rand64(rng, shape)]


@case("getitem integer arrays and masks")
def _getitem_advanced(data, rng):
    shape = data.draw(shapes_nd)
    idx = data.draw(
        hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_dims=2, max_side=4)),
        label="index",
    )
    mask = data.draw(hnp.arrays(bool, shape), label="mask")
    t_idx = tuple(torch.from_numpy(i) for i in idx)
    t_mask = torch.from_numpy(mask)
    return (
        lambda x: x[idx].sum() + x[mask] * 2 if mask.any() else x[idx],
        lambda x: x[t_idx].sum() + x[t_mask] * 2 if mask.any() else x[t_idx],
        [rand64(rng, shape)],
    )


@case("gather")
def _gather(data, rng):
    shape = data.draw(shapes_nd)
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    # torch.gather: any size on the gathered axis, at most the input's size on the others
    ishape = [data.draw(st.integers(1, n), label=f"index size {d}") for d, n in enumerate(shape)]
    ishape[axis] = data.draw(st.integers(1, 4), label="picked")
    idx = rng.integers(0, shape[axis], size=ishape)
    return (
        lambda x: x.gather(axis, idx),
        lambda x: torch.gather(x, axis, torch.from_numpy(idx)),
        [rand64(rng, shape)],
    )


@case("concatenate / stack / split")
def _join_split(data, rng):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")

    def f_nt(a, b):
        c = nt.concatenate([a, b * 2], axis=axis)
        first, rest = c.split([1, c.shape[axis] - 1], axis)
        return nt.stack([first.sum(axis=axis), rest.mean(axis=axis)], axis=0)

    def f_t(a, b):
        c = torch.cat([a, b * 2], dim=axis)
        first, rest = c.split([1, c.shape[axis] - 1], axis)
        return torch.stack([first.sum(dim=axis), rest.mean(dim=axis)], dim=0)

    return f_nt, f_t, [rand64(rng, shape), rand64(rng, shape)]


@case("where / masked_fill")
def _where(data, rng):
    (sc, sa, sb), _ = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), label="shapes"
    )
    cond = np.asarray(rng.random(sc) > 0.5)
    tc = torch.from_numpy(cond)
    return (
        lambda a, b: nt.where(cond, a, b).masked_fill(cond, 0.25),
        lambda a, b: torch.where(tc, a, b).masked_fill(tc, 0.25),
        [rand64(rng, sa), rand64(rng, sb)],
    )


# ----------------------------------------------------------------------------- layers and losses
@case("linear")
def _linear(data, rng):
    lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), label="lead")
    n_in, n_out = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    arrays = [rand64(rng, lead + (n_in,)), rand64(rng, (n_out, n_in)), rand64(rng, (n_out,))]
    if data.draw(st.booleans(), label="bias"):
        return F.linear, TF.linear, arrays
    return F.linear, TF.linear, arrays[:2]


@case("embedding (padding_idx)")
def _embedding(data, rng):
    vocab, dim = data.draw(st.integers(2, 5)), data.draw(st.integers(1, 3))
    ids = rng.integers(0, vocab, size=data.draw(hnp.array_shapes(max_dims=2, max_side=4)))
    pad = data.draw(st.sampled_from([None, 0, vocab - 1]), label="padding_idx")
    t_ids = torch.from_numpy(ids)
    return (
        lambda w: F.embedding(ids, w, padding_idx=pad),
        lambda w: TF.embedding(t_ids, w, padding_idx=pad),
        [rand64(rng, (vocab, dim))],
    )


@case("layer_norm")
def _layer_norm(data, rng):
    lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), label="lead")
    norm = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=2, max_side=4))
    arrays = [rand64(rng, lead + norm), rand64(rng, norm), rand64(rng, norm)]
    return (
        lambda x, w, b: F.layer_norm(x, norm, w, b, eps=1e-5),
        lambda x, w, b: TF.layer_norm(x, norm, w, b, eps=1e-5),
        arrays,
        dict(rtol=1e-10, atol=1e-12),
    )


@case("cross_entropy")
def _cross_entropy(data, rng):
    c = data.draw(st.integers(2, 4), label="classes")
    shape = data.draw(st.sampled_from([(c,), (3, c), (2, c, 3), (2, c, 2, 2)]), label="shape")
    target = rng.integers(0, c, size=shape[:1] + shape[2:] if len(shape) > 1 else ())
    if target.size > 1:
        target.reshape(-1)[0] = -100  # one ignored position (never all: torch gives NaN)
    kw = dict(
        reduction=data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction"),
        label_smoothing=data.draw(st.sampled_from([0.0, 0.1, 0.3]), label="smoothing"),
        ignore_index=-100,
    )
    tt = torch.from_numpy(target)
    return (
        lambda x: F.cross_entropy(x, target, **kw),
        lambda x: TF.cross_entropy(x, tt, **kw),
        [rand64(rng, shape, -3, 3)],
    )


@case("nll_loss")
def _nll(data, rng):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 4))
    target = rng.integers(0, c, size=n)
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
    tt = torch.from_numpy(target)
    return (
        lambda x: F.nll_loss(F.log_softmax(x, 1), target, reduction=reduction),
        lambda x: TF.nll_loss(torch.log_softmax(x, 1), tt, reduction=reduction),
        [rand64(rng, (n, c))],
    )


@case("mse_loss")
def _mse(data, rng):
    shape = data.draw(shapes)
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), label="reduction")
    return (
        lambda a, b: F.mse_loss(a, b, reduction=reduction),
        lambda a, b: TF.mse_loss(a, b, reduction=reduction),
        [rand64(rng, shape), rand64(rng, shape)],
    )


@pytest.mark.parametrize("name", CASES)
@settings(max_examples=12)
@given(data=st.data(), seed=seeds)
def test_value_and_gradient_match_pytorch(name, data, seed):
    rng = np.random.default_rng(seed)
    f_nt, f_torch, arrays, *tol = CASES[name](data, rng)
    compare(f_nt, f_torch, arrays, rng, **(tol[0] if tol else TIGHT))


# ----------------------------------------------------------------------------- specific
def test_cross_entropy_label_smoothing_with_underflowing_softmax_matches_pytorch():
    logits = np.array([[0.0, -1000.0, 5.0], [2.0, 1.0, -800.0]])
    target = np.array([2, 0])
    compare(
        lambda x: F.cross_entropy(x, target, label_smoothing=0.2),
        lambda x: TF.cross_entropy(x, torch.from_numpy(target), label_smoothing=0.2),
        [logits],
        np.random.default_rng(0),
    )


def test_gelu_float32_matches_pytorch():
    x = np.linspace(-8, 8, 161, dtype=np.float32)
    for approximate in ("none", "tanh"):
        xt = nt.Tensor(x, requires_grad=True)
        tt = torch.tensor(x, requires_grad=True)
        y = F.gelu(xt, approximate=approximate)
        yt = TF.gelu(tt, approximate=approximate)
        y.sum().backward()
        yt.sum().backward()
        assert y.dtype == np.float32 and xt.grad.dtype == np.float32
        # 1 + erf(x / sqrt 2) cancels for x << 0, so float32 results differ by ~|x| 1e-7
        # there (PyTorch's float32 gelu' is 0 below x = -5, the true value ~ -1e-6)
        np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-5, atol=2e-6)
        np.testing.assert_allclose(xt.grad, tt.grad.numpy(), rtol=1e-5, atol=2e-6)


def test_gelu_tails_match_pytorch():
    x = np.concatenate([np.linspace(-30, 30, 601), np.linspace(-6, 6, 1201)])
    for approximate in ("none", "tanh"):
        compare(
            lambda t, a=approximate: F.gelu(t, approximate=a),
            lambda t, a=approximate: TF.gelu(t, approximate=a),
            [x],
            np.random.default_rng(0),
            rtol=1e-12,
            atol=1e-14,
        )


def test_sigmoid_keeps_relative_precision_in_the_tails():
    # regression: 0.5 * (1 + tanh(x / 2)) cancelled to 0 for x < -37 (PyTorch: 4.2e-18 at -40)
    x = np.linspace(-60, 60, 241)
    compare(F.sigmoid, torch.sigmoid, [x], np.random.default_rng(0), rtol=1e-12, atol=0)


def test_matmul_vector_at_vector_matches_pytorch():
    rng = np.random.default_rng(0)
    compare(operator.matmul, operator.matmul, [rand64(rng, (3,)), rand64(rng, (3,))], rng)


def test_gather_with_a_smaller_index_matches_pytorch():
    # regression: the index was broadcast like np.take_along_axis (output (3, 2), torch (1, 2))
    idx = np.array([[0, 2]])
    compare(
        lambda x: x.gather(1, idx),
        lambda x: torch.gather(x, 1, torch.from_numpy(idx)),
        [rand64(np.random.default_rng(0), (3, 4))],
        np.random.default_rng(1),
    )


def test_a_small_model_matches_pytorch_end_to_end():
    """Embedding -> LayerNorm -> Linear -> GELU -> Linear -> cross-entropy, all gradients."""
    rng = np.random.default_rng(0)
    vocab, dim, n_cls = 7, 4, 3
    ids = rng.integers(0, vocab, size=(2, 5))
    target = rng.integers(0, n_cls, size=(2, 5))
    target[0, 0] = -100
    arrays = [
        rand64(rng, (vocab, dim)),
        1 + 0.1 * rand64(rng, (dim,)),
        0.1 * rand64(rng, (dim,)),
        rand64(rng, (8, dim)),
        rand64(rng, (8,)),
        rand64(rng, (n_cls, 8)),
    ]

    def f_nt(emb, g, b, w1, b1, w2):
        h = F.layer_norm(F.embedding(ids, emb, padding_idx=0), dim, g, b)
        logits = F.linear(F.gelu(F.linear(h, w1, b1)), w2)
        return F.cross_entropy(logits.permute(0, 2, 1), target, label_smoothing=0.1)

    t_ids, t_target = torch.from_numpy(ids), torch.from_numpy(target)

    def f_t(emb, g, b, w1, b1, w2):
        h = TF.layer_norm(TF.embedding(t_ids, emb, padding_idx=0), (dim,), g, b)
        logits = TF.linear(TF.gelu(TF.linear(h, w1, b1)), w2)
        return TF.cross_entropy(logits.permute(0, 2, 1), t_target, label_smoothing=0.1)

    compare(f_nt, f_t, arrays, rng, rtol=1e-10, atol=1e-12)
