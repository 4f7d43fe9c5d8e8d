"""Finite-difference gradchecks (float64) of every differentiable tensor op on Hypothesis shapes.

Each test draws shapes (broadcasting included) and a seed, builds float64 inputs in a domain where
the op is smooth (away from kinks, ties and poles), checks the forward value against NumPy and the
backward against central differences with ``numtrans.gradcheck``. Tensors stay below ~64 elements:
gradcheck runs two forwards per element.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
from conftest import away_from_zero, distinct, grads_of, rand64, t64
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import numtrans as nt
import numtrans.functional as F

seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
shapes_nd = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
pair_shapes = hnp.mutually_broadcastable_shapes(
    num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=3
)


def check(fn, *inputs, expected=None):
    """Gradcheck ``fn`` at ``inputs``; if given, compare the forward value with ``expected``."""
    out = fn(*inputs)
    if expected is not None:
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
        assert out.shape == np.shape(expected)
    assert out.dtype == np.float64
    assert nt.gradcheck(fn, inputs)


# ----------------------------------------------------------------------------- arithmetic
def _positive(rng, shape):
    return rng.uniform(0.5, 2.0, size=shape)


BINARY = {
    # name: (operator, left domain, right domain)
    "add": (operator.add, rand64, rand64),
    "sub": (operator.sub, rand64, rand64),
    "mul": (operator.mul, rand64, rand64),
    "div": (operator.truediv, rand64, away_from_zero),
    "pow": (operator.pow, _positive, rand64),
}


@pytest.mark.parametrize("name", BINARY)
@given(shapes=pair_shapes, seed=seeds)
def test_binary_ops_broadcasting_on_both_operands(name, shapes, seed):
    op, left, right = BINARY[name]
    rng = np.random.default_rng(seed)
    (sa, sb), result = shapes
    a, b = left(rng, sa), right(rng, sb)
    check(op, t64(a), t64(b), expected=op(a, b))
    out = op(t64(a), t64(b))
    assert out.shape == result


@pytest.mark.parametrize("name", BINARY)
@given(shape=shapes, seed=seeds, scalar=st.sampled_from([0.75, -1.5, 2, 3.0]))
def test_binary_ops_with_a_python_scalar_on_either_side(name, shape, seed, scalar):
    op, left, right = BINARY[name]
    rng = np.random.default_rng(seed)
    # tensor OP scalar
    a = left(rng, shape)
    check(lambda x: op(x, scalar), t64(a), expected=op(a, scalar))
    # scalar OP tensor (the scalar must be in the left domain: positive base for pow)
    s = abs(scalar) if name == "pow" else scalar
    b = right(rng, shape)
    check(lambda x: op(s, x), t64(b), expected=op(s, b))


@pytest.mark.parametrize("name", BINARY)
@given(shapes=pair_shapes, seed=seeds)
def test_binary_ops_with_a_numpy_array_on_either_side(name, shapes, seed):
    op, left, right = BINARY[name]
    rng = np.random.default_rng(seed)
    (sa, sb), _ = shapes
    a, b = left(rng, sa), right(rng, sb)
    check(lambda x: op(x, b), t64(a), expected=op(a, b))
    # ndarray OP Tensor must reach Tensor.__rOP__ (__array_priority__), not NumPy's loop
    out = op(a, t64(b))
    assert isinstance(out, nt.Tensor)
    check(lambda y: op(a, y), t64(b), expected=op(a, b))


@given(shape=shapes, seed=seeds)
def test_neg(shape, seed):
    a = rand64(np.random.default_rng(seed), shape)
    check(operator.neg, t64(a), expected=-a)


@pytest.mark.parametrize("exponent", [0, 1, 2, 3, -1, -2, 0.5, 1.5, -2.5])
@given(shape=shapes, seed=seeds)
def test_pow_constant_exponent(exponent, shape, seed):
    a = _positive(np.random.default_rng(seed), shape)
    check(lambda x: x**exponent, t64(a), expected=a**exponent)


def test_pow_with_a_numpy_array_exponent():
    # regression: a non-Tensor exponent used to be taken for a scalar (float(b) failed)
    a, b = np.array([[0.5, 1.5], [2.0, 1.1]]), np.array([2.0, -0.5])
    check(lambda x: x**b, t64(a), expected=a**b)


@pytest.mark.parametrize("exponent", [2, 3, -1])
def test_pow_integer_exponent_of_negative_base(exponent):
    a = np.array([-1.5, -0.5, 0.7, 2.0])
    check(lambda x: x**exponent, t64(a), expected=a**exponent)


# ----------------------------------------------------------------------------- matmul
@st.composite
def matmul_shapes(draw):
    batch = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3)
    ).input_shapes
    m, k, n = (draw(st.integers(1, 3)) for _ in range(3))
    return batch[0] + (m, k), batch[1] + (k, n)


@given(shapes=matmul_shapes(), seed=seeds)
def test_matmul_batched_with_broadcast_batch_dims(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = rand64(rng, shapes[0]), rand64(rng, shapes[1])
    check(operator.matmul, t64(a), t64(b), expected=a @ b)
    check(nt.matmul, t64(a), t64(b), expected=np.matmul(a, b))


ONE_D_CASES = {
    "vector @ matrix": ((3,), (3, 2)),
    "matrix @ vector": ((2, 3), (3,)),
    "vector @ batched": ((3,), (2, 3, 4)),
    "batched @ vector": ((2, 2, 3), (3,)),
    "vector @ broadcast batch": ((3,), (2, 1, 3, 2)),
    "vector @ vector": ((3,), (3,)),
}


@pytest.mark.parametrize("case", ONE_D_CASES)
@settings(max_examples=5)
@given(seed=seeds)
def test_matmul_one_dimensional_operands(case, seed):
    rng = np.random.default_rng(seed)
    sa, sb = ONE_D_CASES[case]
    a, b = rand64(rng, sa), rand64(rng, sb)
    check(operator.matmul, t64(a), t64(b), expected=a @ b)


def test_matmul_vector_at_vector():
    # regression: the backward used np.expand_dims(g, -2) on the 0-d output gradient
    rng = np.random.default_rng(0)
    a, b = rand64(rng, (3,)), rand64(rng, (3,))
    check(operator.matmul, t64(a), t64(b), expected=a @ b)


def test_matmul_gradient_only_for_the_operand_that_requires_it():
    rng = np.random.default_rng(1)
    a, w = t64(rand64(rng, (2, 3, 4))), t64(rand64(rng, (4, 5)), requires_grad=False)
    check(operator.matmul, a, w)
    _, (ga, gw) = grads_of(operator.matmul, a, w)
    assert ga.shape == a.shape and gw is None


# ----------------------------------------------------------------------------- reductions
@st.composite
def shape_and_axis(draw, min_dims=1):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=4))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or ndim == 0:
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-ndim, ndim - 1))
    else:
        picked = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        # mix positive and negative spellings of the same axes
        axis = tuple(a - ndim if draw(st.booleans()) else a for a in picked)
    return shape, axis, draw(st.booleans())


def _reduced_count(shape, axis):
    if axis is None:
        return int(np.prod(shape))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes]))


@pytest.mark.parametrize("name", ["sum", "mean"])
@given(spec=shape_and_axis(min_dims=0), seed=seeds)
def test_sum_mean(name, spec, seed):
    shape, axis, keepdims = spec
    a = rand64(np.random.default_rng(seed), shape)
    expected = getattr(np, name)(a, axis=axis, keepdims=keepdims)
    check(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims), t64(a), expected=expected)


@pytest.mark.parametrize("correction", [0, 1])
@given(spec=shape_and_axis(), seed=seeds)
def test_var(correction, spec, seed):
    shape, axis, keepdims = spec
    correction = min(correction, _reduced_count(shape, axis) - 1)  # keep n - correction > 0
    a = rand64(np.random.default_rng(seed), shape)
    expected = np.var(a, axis=axis, keepdims=keepdims, ddof=correction)
    check(
        lambda x: x.var(axis=axis, keepdims=keepdims, correction=correction),
        t64(a),
        expected=expected,
    )


@pytest.mark.parametrize("name", ["max", "min"])
@given(spec=shape_and_axis(), seed=seeds)
def test_max_min_without_ties(name, spec, seed):
    shape, axis, keepdims = spec
    a = distinct(np.random.default_rng(seed), shape)
    expected = getattr(np, name)(a, axis=axis, keepdims=keepdims)
    check(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims), t64(a), expected=expected)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_ties_share_the_gradient_equally(name):
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    if name == "min":
        a = -a
    x = t64(a)
    getattr(x, name)(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    x.grad = None
    getattr(x, name)().backward()  # full reduction: only the two 3.0s tie
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [0, 0, 0]])


def test_reduction_axis_out_of_range_is_an_index_error():
    with pytest.raises(IndexError, match="axis 2 is out of range"):
        t64(np.ones((2, 3))).sum(axis=2)


# ----------------------------------------------------------------------------- elementwise
def _gelu_exact(a):
    import math

    return a * 0.5 * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))


def _gelu_tanh(a):
    return 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))


UNARY = {
    # name: (numtrans fn, numpy reference, input domain)
    "exp": (nt.exp, np.exp, rand64),
    "log": (nt.log, np.log, _positive),
    "sqrt": (nt.sqrt, np.sqrt, _positive),
    "abs": (lambda x: x.abs(), np.abs, away_from_zero),
    "tanh": (nt.tanh, np.tanh, rand64),
    "sigmoid": (lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), rand64),
    "relu": (lambda x: x.relu(), lambda a: np.maximum(a, 0), away_from_zero),
    "gelu": (lambda x: F.gelu(x), _gelu_exact, lambda r, s: rand64(r, s, -4, 4)),
    "gelu_tanh": (
        lambda x: F.gelu(x, approximate="tanh"),
        _gelu_tanh,
        lambda r, s: rand64(r, s, -4, 4),
    ),
    "exp (method)": (lambda x: x.exp(), np.exp, rand64),
    "log (method)": (lambda x: x.log(), np.log, _positive),
    "sqrt (method)": (lambda x: x.sqrt(), np.sqrt, _positive),
    "tanh (method)": (lambda x: x.tanh(), np.tanh, rand64),
    "F.sigmoid": (F.sigmoid, lambda a: 1 / (1 + np.exp(-a)), rand64),
    "F.tanh": (F.tanh, np.tanh, rand64),
    "F.relu": (F.relu, lambda a: np.maximum(a, 0), away_from_zero),
}


@pytest.mark.parametrize("name", UNARY)
@given(shape=shapes, seed=seeds)
def test_unary_elementwise(name, shape, seed):
    fn, ref, domain = UNARY[name]
    a = domain(np.random.default_rng(seed), shape)
    check(fn, t64(a), expected=ref(a))


def test_gelu_rejects_an_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(t64([1.0]), approximate="fast")


def test_abs_and_relu_gradient_at_zero_is_zero_like_pytorch():
    x = t64([0.0, 0.0])
    (x.abs() + x.relu()).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])


@pytest.mark.parametrize("bounds", [(-0.5, 0.7), (None, 0.3), (-0.2, None)])
@given(shape=shapes, seed=seeds)
def test_clip(bounds, shape, seed):
    lo, hi = bounds
    a = rand64(np.random.default_rng(seed), shape)
    for edge in (lo, hi):  # keep finite differences off the kinks
        if edge is not None:
            a = np.where(np.abs(a - edge) < 1e-3, edge + 0.01, a)
    expected = np.clip(a, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    check(lambda x: x.clip(lo, hi), t64(a), expected=expected)
    check(lambda x: nt.clip(x, lo, hi), t64(a), expected=expected)


def test_clip_needs_a_bound():
    with pytest.raises(ValueError, match="min or max"):
        t64([1.0]).clip()


# ----------------------------------------------------------------------------- softmax
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data(), seed=seeds)
def test_softmax_and_log_softmax(name, data, seed):
    shape = data.draw(shapes_nd)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = rand64(np.random.default_rng(seed), shape, -3, 3)
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    expected = p if name == "softmax" else np.log(p)
    check(lambda x: getattr(x, name)(axis), t64(a), expected=expected)
    check(lambda x: getattr(nt.functional, name)(x, axis), t64(a), expected=expected)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_is_stable_for_huge_logits(name):
    a = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -999.0]])
    small = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0]])  # same rows minus their max shift
    out = getattr(t64(a), name)(-1)
    ref = getattr(t64(small), name)(-1)
    assert np.isfinite(out.data).all()
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-12, atol=1e-12)
    check(lambda x: getattr(x, name)(-1), t64(a))


# ----------------------------------------------------------------------------- shapes
@given(shape=shapes, seed=seeds)
def test_reshape_view_flatten(shape, seed):
    a = rand64(np.random.default_rng(seed), shape)
    n = a.size
    check(lambda x: x.reshape(-1), t64(a), expected=a.reshape(-1))
    check(lambda x: x.reshape(n, 1), t64(a), expected=a.reshape(n, 1))
    check(lambda x: x.view(*shape[::-1]), t64(a), expected=a.reshape(shape[::-1]))
    check(lambda x: x.flatten(), t64(a), expected=a.reshape(-1))
    if a.ndim >= 2:
        check(lambda x: x.flatten(1), t64(a), expected=a.reshape(shape[0], -1))


def test_reshape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) into \(4,\)"):
        t64(np.ones((2, 3))).reshape(4)


@given(data=st.data(), seed=seeds)
def test_transpose_permute_T(data, seed):
    shape = data.draw(shapes_nd)
    a = rand64(np.random.default_rng(seed), shape)
    perm = data.draw(st.permutations(range(a.ndim)))
    check(lambda x: x.permute(*perm), t64(a), expected=a.transpose(perm))
    check(lambda x: x.permute(tuple(perm)), t64(a), expected=a.transpose(perm))
    check(lambda x: x.T, t64(a), expected=a.T)
    d0 = data.draw(st.integers(-a.ndim, a.ndim - 1))
    d1 = data.draw(st.integers(-a.ndim, a.ndim - 1))
    check(lambda x: x.transpose(d0, d1), t64(a), expected=np.swapaxes(a, d0, d1))


@given(data=st.data(), seed=seeds)
def test_unsqueeze_squeeze_expand(data, seed):
    shape = data.draw(shapes)
    a = rand64(np.random.default_rng(seed), shape)
    dim = data.draw(st.integers(-a.ndim - 1, a.ndim))
    check(lambda x: x.unsqueeze(dim), t64(a), expected=np.expand_dims(a, dim))
    check(lambda x: x.squeeze(), t64(a), expected=np.squeeze(a))
    if a.ndim:
        d = data.draw(st.integers(0, a.ndim - 1))
        expected = np.squeeze(a, d) if shape[d] == 1 else a
        check(lambda x: x.squeeze(d), t64(a), expected=expected)
    # expand: stretch size-1 axes and add leading ones
    target = (2,) + tuple(3 if n == 1 else n for n in shape)
    check(lambda x: x.expand(target), t64(a), expected=np.broadcast_to(a, target))
    check(lambda x: x.expand(*target), t64(a), expected=np.broadcast_to(a, target))
    if a.ndim:
        keep = (2,) + (-1,) * a.ndim
        check(lambda x: x.expand(keep), t64(a), expected=np.broadcast_to(a, (2,) + shape))


@pytest.mark.parametrize("case", ["permute", "expand"])
def test_single_int_shape_arguments(case):
    # regression: a single int argument was unwrapped as if it were a tuple (TypeError)
    if case == "permute":
        check(lambda x: x.permute(0), t64([1.0, 2.0]), expected=[1.0, 2.0])
    else:
        check(lambda x: x.expand(3), t64(2.0), expected=[2.0, 2.0, 2.0])


def test_single_int_reshape_and_view():
    check(lambda x: x.reshape(4), t64(np.ones((2, 2))), expected=np.ones(4))
    check(lambda x: x.view(-1), t64(np.ones((2, 2))), expected=np.ones(4))


def test_astype_keeps_the_graph_and_casts_the_gradient_back():
    x = t64([1.0, 2.0])
    y = x.astype(np.float32)
    assert y.dtype == np.float32 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, [2.0, 4.0])
    check(lambda t: t.double() * 3.0, t64([1.0, -2.0]))
    assert not t64([1.5]).long().requires_grad  # integers end the graph


# ----------------------------------------------------------------------------- indexing
@given(data=st.data(), seed=seeds)
def test_getitem_basic_ints_slices_none_ellipsis(data, seed):
    shape = data.draw(shapes_nd)
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    a = rand64(np.random.default_rng(seed), shape)
    check(lambda x: x[index], t64(a), expected=a[index])


@given(data=st.data(), seed=seeds)
def test_getitem_integer_arrays_with_repeats(data, seed):
    shape = data.draw(shapes_nd)
    index = data.draw(
        hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_dims=2, max_side=4))
    )
    a = rand64(np.random.default_rng(seed), shape)
    check(lambda x: x[index], t64(a), expected=a[index])
    # the same index given as a Tensor
    tindex = tuple(nt.Tensor(i) for i in index)
    check(lambda x: x[tindex], t64(a), expected=a[index])


def test_getitem_repeated_index_accumulates():
    x = t64([1.0, 2.0, 3.0])
    x[np.array([0, 2, 0, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 1.0])


@given(data=st.data(), seed=seeds)
def test_getitem_boolean_mask(data, seed):
    shape = data.draw(shapes_nd)
    mask = data.draw(hnp.arrays(bool, shape))
    a = rand64(np.random.default_rng(seed), shape)
    check(lambda x: x[mask], t64(a), expected=a[mask])
    check(lambda x: x[nt.Tensor(mask)], t64(a), expected=a[mask])
    # a mask over the leading axis only
    row_mask = mask.reshape(shape[0], -1)[:, 0]
    check(lambda x: x[row_mask], t64(a), expected=a[row_mask])


MIXED_INDICES = {
    "slice, array": (slice(None), np.array([2, 0, 2])),
    "array, slice": (np.array([1, 1]), slice(1, None)),
    "None, int, array": (None, 1, np.array([0, 3])),
    "ellipsis, array": (Ellipsis, np.array([3, 0])),
    "array, None, array": (np.array([0, 1]), None, np.array([1, 1])),
    "negative step, mask": (slice(None, None, -1), np.array([True, False, True, True])),
    "tensor comparison": None,
}


@pytest.mark.parametrize("case", MIXED_INDICES)
def test_getitem_mixed_basic_and_advanced(case):
    a = rand64(np.random.default_rng(3), (2, 4))
    index = MIXED_INDICES[case]
    if index is None:
        x = t64(a)
        check(lambda t: t[x > 0], x, expected=a[a > 0])
    else:
        check(lambda t: t[index], t64(a), expected=a[index])


@given(data=st.data(), seed=seeds)
def test_gather_take_along_axis(data, seed):
    shape = data.draw(shapes_nd)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    # like torch.gather: the index may be shorter than the input on the other axes
    idx_shape = [data.draw(st.integers(1, m)) for m in shape]
    idx_shape[axis] = data.draw(st.integers(1, 4))
    rng = np.random.default_rng(seed)
    idx = rng.integers(-n, n, size=idx_shape)  # repeats and negative ids included
    a = rand64(rng, shape)
    block = tuple(
        slice(None) if d == axis % a.ndim else slice(0, m) for d, m in enumerate(idx_shape)
    )
    expected = np.take_along_axis(a[block], idx, axis=axis)
    check(lambda x: x.gather(axis, idx), t64(a), expected=expected)
    check(lambda x: nt.gather(x, axis, nt.Tensor(idx)), t64(a), expected=expected)


def test_gather_errors():
    x = t64(np.ones((2, 3)))
    with pytest.raises(IndexError, match="out of range"):
        x.gather(1, np.array([[3], [0]]))
    with pytest.raises(TypeError, match="integer"):
        x.gather(1, np.array([[0.0], [1.0]]))
    with pytest.raises(ValueError, match="does not fit"):
        x.gather(1, np.zeros((3, 1), dtype=np.int64))  # larger than x on axis 0
    with pytest.raises(ValueError, match="does not fit"):
        x.gather(1, np.zeros(2, dtype=np.int64))  # fewer dimensions


# ----------------------------------------------------------------------------- join and split
@given(data=st.data(), seed=seeds)
def test_concatenate_and_cat(data, seed):
    shape = data.draw(shapes_nd)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    rng = np.random.default_rng(seed)
    arrays = []
    for s in sizes:
        piece = list(shape)
        piece[axis] = s
        arrays.append(rand64(rng, piece))
    expected = np.concatenate(arrays, axis=axis)
    check(lambda *xs: nt.concatenate(list(xs), axis=axis), *map(t64, arrays), expected=expected)
    check(lambda *xs: nt.cat(xs, axis), *map(t64, arrays), expected=expected)


@given(data=st.data(), seed=seeds)
def test_stack(data, seed):
    shape = data.draw(shapes)
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    k = data.draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    arrays = [rand64(rng, shape) for _ in range(k)]
    expected = np.stack(arrays, axis=axis)
    check(lambda *xs: nt.stack(list(xs), axis=axis), *map(t64, arrays), expected=expected)


def test_concatenate_mixes_constants_and_tensors():
    x = t64([1.0, 2.0])
    check(lambda t: nt.concatenate([t, np.array([5.0]), t], axis=0), x, expected=[1, 2, 5, 1, 2])


@given(data=st.data(), seed=seeds)
def test_split(data, seed):
    shape = data.draw(shapes_nd)
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    a = rand64(np.random.default_rng(seed), shape)
    step = data.draw(st.integers(1, n))
    cuts = list(range(step, n, step))
    for i, piece in enumerate(np.split(a, cuts, axis=axis)):
        check(lambda x, i=i: x.split(step, axis)[i], t64(a), expected=piece)
    sections = data.draw(st.lists(st.integers(0, n), min_size=1, max_size=3).map(sorted))
    sizes = np.diff([0, *sections, n]).tolist()
    for i, piece in enumerate(np.split(a, sections, axis=axis)):
        check(lambda x, i=i: nt.split(x, sizes, axis)[i], t64(a), expected=piece)


def test_split_pieces_share_one_gradient():
    x = t64(np.arange(5.0))
    first, second = x.split([2, 3])
    (first.sum() * 2 + (second * second).sum()).backward()
    np.testing.assert_array_equal(x.grad, [2, 2, 4, 6, 8])
    with pytest.raises(ValueError, match="do not add up"):
        x.split([2, 2])


# ----------------------------------------------------------------------------- where, masked_fill
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), seed=seeds)
def test_where_broadcasts_condition_and_both_branches(shapes, seed):
    (sc, sa, sb), _ = shapes
    rng = np.random.default_rng(seed)
    cond = rng.random(sc) > 0.5
    a, b = rand64(rng, sa), rand64(rng, sb)
    expected = np.where(cond, a, b)
    check(lambda x, y: nt.where(cond, x, y), t64(a), t64(b), expected=expected)
    check(lambda x: nt.where(nt.Tensor(cond), x, 0.5), t64(a), expected=np.where(cond, a, 0.5))
    check(lambda y: nt.where(cond, -1.0, y), t64(b), expected=np.where(cond, -1.0, b))


@given(data=st.data(), seed=seeds)
def test_masked_fill_with_a_broadcast_mask(data, seed):
    shape = data.draw(shapes_nd)
    # the mask may drop leading axes and have size 1 anywhere
    mask_shape = tuple(data.draw(st.sampled_from([1, n])) for n in shape)
    mask_shape = mask_shape[data.draw(st.integers(0, len(shape))) :]
    rng = np.random.default_rng(seed)
    mask = rng.random(mask_shape) > 0.5
    a = rand64(rng, shape)
    expected = np.where(mask, -7.0, a)
    check(lambda x: x.masked_fill(mask, -7.0), t64(a), expected=expected)
    check(lambda x: nt.masked_fill(x, nt.Tensor(mask), -7.0), t64(a), expected=expected)


def test_masked_fill_errors():
    x = t64(np.ones((2, 3)))
    with pytest.raises(TypeError, match="boolean mask"):
        x.masked_fill(np.array([1, 0, 1]), 0.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        x.masked_fill(np.ones((4, 2, 3), dtype=bool), 0.0)


def test_methods_take_pytorchs_dim_with_numpys_axis_as_alias():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    x = nt.tensor(a)
    for name in ("sum", "mean", "max", "min"):
        by_dim = getattr(x, name)(dim=1, keepdim=True).data
        by_axis = getattr(x, name)(axis=1, keepdims=True).data
        by_position = getattr(x, name)(1, True).data
        expected = getattr(np, name)(a, axis=1, keepdims=True)
        for got in (by_dim, by_axis, by_position):
            np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(x.var(dim=0).data, np.var(a, axis=0, ddof=1))
    np.testing.assert_array_equal(x.argmax(dim=1).data, np.argmax(a, axis=1))
    np.testing.assert_allclose(x.softmax(dim=0).data, x.softmax(axis=0).data)
    np.testing.assert_allclose(x.log_softmax(dim=0).data, x.log_softmax(axis=0).data)
    assert [p.shape for p in x.split(2, dim=1)] == [p.shape for p in x.split(2, axis=1)]
    idx = np.array([[0], [2], [1]])
    np.testing.assert_array_equal(x.gather(dim=1, index=idx).data, x.gather(1, idx).data)
    with pytest.raises(TypeError, match="not both"):
        x.sum(dim=0, axis=1)


def test_functions_take_pytorchs_dim_with_numpys_axis_as_alias():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    x, y = nt.tensor(a), nt.tensor(b)
    for dim in (0, 1):
        np.testing.assert_array_equal(nt.cat([x, y], dim=dim).data, np.concatenate([a, b], dim))
        np.testing.assert_array_equal(nt.cat([x, y], axis=dim).data, np.concatenate([a, b], dim))
        np.testing.assert_array_equal(nt.stack([x, y], dim=dim).data, np.stack([a, b], dim))
        np.testing.assert_array_equal(nt.stack([x, y], axis=dim).data, np.stack([a, b], dim))
    pieces = nt.split(x, 2, dim=1)
    assert [p.shape for p in pieces] == [(2, 2), (2, 1)]
    idx = np.array([[2], [0]])
    np.testing.assert_array_equal(nt.gather(x, 1, idx).data, np.take_along_axis(a, idx, 1))
    with pytest.raises(TypeError, match="not both"):
        nt.cat([x, y], dim=1, axis=0)
    with pytest.raises(TypeError, match="not both"):
        nt.split(x, 2, dim=1, axis=0)
    np.testing.assert_allclose(F.softmax(x, dim=0).data, F.softmax(x, axis=0).data)
    np.testing.assert_allclose(F.log_softmax(x, dim=0).data, x.log_softmax(0).data)
    with pytest.raises(TypeError, match="not both"):
        F.softmax(x, dim=0, axis=1)
