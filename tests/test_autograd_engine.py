"""The backward engine itself: graph traversal, accumulation, grad modes, errors, anomaly
detection, custom Functions, gradcheck's own failure reports and dtype rules.

Each test is one of the classic traps of a hand-written autograd."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from conftest import t64
from hypothesis import given, settings
from hypothesis import strategies as st

import numtrans as nt
import numtrans.functional as F
from numtrans.autograd.engine import topological_order


# ----------------------------------------------------------------------------- graph shapes
def test_a_node_reused_twice_gets_both_contributions():
    x = t64([1.0, 2.0])
    h = x.exp()  # one intermediate node, consumed by two ops
    y = (h * 3.0 + h * h).sum()
    y.backward()
    e = np.exp([1.0, 2.0])
    np.testing.assert_allclose(x.grad, (3.0 + 2 * e) * e, rtol=1e-13)


def test_x_times_x():
    x = t64([-1.5, 0.5, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data)
    assert nt.gradcheck(lambda t: t * t, (t64([-1.5, 0.5, 3.0]),))
    assert nt.gradcheck(lambda t: t / t + t - t, (t64([-1.5, 0.5, 3.0]),))


def test_diamond_graph_visits_each_node_once():
    x = t64(np.array([0.3, -0.7]))
    a = x * 2.0
    b, c = a.tanh(), a.exp()
    d = b * c
    order = topological_order(d)
    assert len(order) == len({id(t) for t in order}) == 5  # x, a, b, c, d: a listed once
    ids = [id(t) for t in order]  # (== on tensors is elementwise)
    assert ids.index(id(a)) < ids.index(id(b)) and ids.index(id(a)) < ids.index(id(c))
    assert ids[0] == id(x) and ids[-1] == id(d)
    d.sum().backward()
    ad = 2 * x.data
    expected = 2 * ((1 - np.tanh(ad) ** 2) * np.exp(ad) + np.tanh(ad) * np.exp(ad))
    np.testing.assert_allclose(x.grad, expected, rtol=1e-13)


def test_broadcasting_on_both_operands_sums_back_to_each_shape():
    a = t64(np.arange(3.0).reshape(3, 1))
    b = t64(np.arange(4.0).reshape(1, 4))
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad, np.full((3, 1), 6.0))  # sum of b
    np.testing.assert_allclose(b.grad, np.full((1, 4), 3.0))  # sum of a
    assert nt.gradcheck(lambda p, q: p * q - q / (p + 5), (t64(a.data), t64(b.data)))


def test_leaves_accumulate_across_uses_and_across_backward_calls():
    w = t64([1.0, 2.0])
    (w * 3.0 + w).sum().backward()  # used twice in one graph
    np.testing.assert_array_equal(w.grad, [4.0, 4.0])
    (w * w).sum().backward()  # a second graph adds to .grad
    np.testing.assert_array_equal(w.grad, [6.0, 8.0])
    w.zero_grad()
    assert w.grad is None


def test_leaf_gradient_is_its_own_array():
    x = t64([1.0, 2.0])
    y = x * 1.0
    y.retain_grad()
    y.sum().backward()
    # identical values, but never the same array: an in-place optimizer step on one must not
    # change the other
    assert x.grad is not y.grad and not np.shares_memory(x.grad, y.grad)
    x2 = t64([1.0, 2.0])
    x2.sum().backward()
    x2.grad += 1  # sum()'s backward is a read-only broadcast view: the leaf must own a copy
    np.testing.assert_array_equal(x2.grad, [2.0, 2.0])


def test_retain_grad_on_an_intermediate():
    x = t64([1.0, -2.0])
    h = x * 3.0
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_array_equal(h.grad, 2 * h.data)
    np.testing.assert_array_equal(x.grad, 6 * h.data)


def test_backward_with_an_explicit_gradient():
    x = t64([1.0, 2.0, 3.0])
    (x * x).backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, -6.0])
    x.grad = None
    (x * x).backward(nt.Tensor(np.ones(3)))
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])
    with pytest.raises(ValueError, match=r"grad has shape \(2,\) but the output has shape \(3,\)"):
        (x * x).backward(np.ones(2))


def test_detach_stops_the_gradient():
    x = t64([2.0])
    y = x * x.detach()  # d/dx = x.detach(), not 2x
    y.backward(np.ones(1))
    np.testing.assert_array_equal(x.grad, [2.0])
    assert not x.detach().requires_grad and x.detach().is_leaf


# ----------------------------------------------------------------------------- backward twice
def test_backward_twice_without_retain_graph_is_a_clear_error():
    x = t64([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_backward_twice_with_retain_graph_accumulates():
    x = t64([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    np.testing.assert_allclose(first, np.exp(x.data) * (1 + x.data), rtol=1e-13)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first, rtol=1e-13)


# ----------------------------------------------------------------------------- masked softmax
def test_fully_masked_softmax_row_is_zero_with_zero_gradient():
    scores = t64(np.array([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3]]))
    mask = np.array([[True, True, True], [False, True, False]])
    with nt.detect_anomaly():  # no NaN anywhere, forward or backward
        p = scores.masked_fill(mask, -np.inf).softmax(-1)
        (p * t64(np.arange(6.0).reshape(2, 3), False)).sum().backward()
    np.testing.assert_array_equal(p.data[0], 0.0)
    np.testing.assert_allclose(p.data[1].sum(), 1.0)
    assert p.data[1, 1] == 0.0
    np.testing.assert_array_equal(scores.grad[0], 0.0)
    assert scores.grad[1, 1] == 0.0 and np.isfinite(scores.grad).all()
    assert nt.gradcheck(lambda s: F.softmax(s.masked_fill(mask, -np.inf), -1), (t64(scores.data),))


def test_fully_masked_log_softmax_row_is_minus_inf_without_nan():
    # regression: -inf - (-inf) gave NaN for the fully masked row
    x = t64(np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 1.0]]))
    y = F.log_softmax(x, -1)
    assert np.isneginf(y.data[0]).all()
    np.testing.assert_allclose(y.data[1, [0, 2]], [-1.3132616875182228, -0.3132616875182228])
    y.backward(np.where(np.isfinite(y.data), 1.0, 0.0))
    assert not np.isnan(x.grad).any()


# ----------------------------------------------------------------------------- grad modes
def test_no_grad_records_nothing_and_restores_the_mode():
    x = t64([1.0, 2.0])
    with nt.no_grad():
        y = x * 2
        assert not nt.is_grad_enabled()
        with nt.enable_grad():
            z = x * 2
    assert nt.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad and not z.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_as_a_decorator_and_set_grad_enabled():
    @nt.no_grad()
    def evaluate(t):
        return (t * t).sum()

    x = t64([3.0])
    assert not evaluate(x).requires_grad
    nt.set_grad_enabled(False)
    try:
        assert not (x * x).requires_grad
    finally:
        nt.set_grad_enabled(True)
    assert (x * x).requires_grad


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError), nt.no_grad():
        1 / 0  # noqa: B018
    assert nt.is_grad_enabled()


def test_ops_on_constants_do_not_require_grad():
    a = nt.Tensor(np.ones(3))
    assert not (a * 2 + a).requires_grad
    assert (a * t64([1.0, 2.0, 3.0])).requires_grad


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "make",
    [
        lambda: nt.tensor([1, 2], requires_grad=True),
        lambda: nt.Tensor(np.array([True]), requires_grad=True),
        lambda: nt.arange(3).requires_grad_(),
    ],
)
def test_requires_grad_on_an_integer_tensor_is_refused(make):
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        make()


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = t64(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"scalar output, got shape \(2, 3\).*grad="):
        (x * 2).backward()


def test_backward_on_a_tensor_without_history():
    with pytest.raises(RuntimeError, match="does not require grad"):
        nt.Tensor(np.ones(1)).backward()


@pytest.mark.parametrize(
    "sa, sb",
    [((2, 3), (4, 5)), ((5, 2, 3), (2, 3)), ((3,), (4,)), ((3,), (4, 2)), ((2, 4), (3,))],
)
def test_matmul_shape_mismatch_names_both_shapes(sa, sb):
    with pytest.raises(ValueError, match=re.escape(f"{sa} @ {sb}")):
        t64(np.ones(sa)) @ t64(np.ones(sb))


def test_matmul_batch_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=re.escape("(2, 2, 3) @ (3, 3, 5)")):
        t64(np.ones((2, 2, 3))) @ t64(np.ones((3, 3, 5)))


def test_matmul_of_a_scalar_is_refused():
    with pytest.raises(ValueError, match="at least 1-D"):
        nt.matmul(t64(2.0), t64(np.ones(2)))


# ----------------------------------------------------------------------------- anomaly detection
def test_anomaly_names_the_op_that_makes_nan_in_forward():
    x = t64([1.0, -2.0])
    with nt.detect_anomaly(), np.errstate(invalid="ignore"):
        y = x * 2.0  # fine
        with pytest.raises(FloatingPointError, match="op 'sqrt' produced NaN"):
            y.sqrt()
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.sqrt().data[1])  # without anomaly mode: silently NaN


def test_anomaly_names_the_op_that_makes_inf_in_backward():
    x = t64([0.0, 4.0])
    with nt.detect_anomaly(), np.errstate(divide="ignore"):
        y = (x.sqrt() * 3.0).sum()  # forward is finite
        with pytest.raises(FloatingPointError, match="backward of op 'sqrt' produced NaN or inf"):
            y.backward()


def test_anomaly_allows_minus_inf_in_forward_for_masks():
    with nt.detect_anomaly():
        x = t64([0.0, 1.0]).masked_fill(np.array([True, False]), -np.inf)
        assert np.isneginf(x.data[0])
    nt.set_detect_anomaly(True)
    try:
        with np.errstate(over="ignore"), pytest.raises(FloatingPointError, match="'exp'"):
            t64([1000.0]).exp()  # +inf is an anomaly
    finally:
        nt.set_detect_anomaly(False)


# ----------------------------------------------------------------------------- deep graphs
def test_a_chain_of_100000_ops_needs_no_recursion():
    x = t64(0.5)
    y = x
    for i in range(100_000):
        y = y * 1.0 if i % 2 else y + 0.0
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # far below the depth: any recursive walk would fail
    try:
        y.backward()
        del y  # freeing the chain must not recurse either
    finally:
        sys.setrecursionlimit(limit)
    assert x.grad == 1.0


# ----------------------------------------------------------------------------- custom Function
class Cube(nt.Function):
    """y = k x^3 with a non-tensor argument k."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return k * x**3

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return 3 * ctx.k * x**2 * grad_out, None


class MulAdd(nt.Function):
    """(a * b + c) with three tensor inputs."""

    @staticmethod
    def forward(ctx, a, b, c):
        ctx.save_for_backward(a, b)
        return a * b + c

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, g * a, g


def test_custom_function_forward_backward_and_gradcheck():
    x = t64([1.0, -2.0, 0.5])
    y = Cube.apply(x, 2.0)
    assert isinstance(y, nt.Tensor) and y._op == "Cube"
    np.testing.assert_allclose(y.data, 2.0 * x.data**3)
    (y.exp() * 0 + y).sum().backward()  # composes with built-in ops
    np.testing.assert_allclose(x.grad, 6.0 * x.data**2)
    assert nt.gradcheck(lambda t: Cube.apply(t, -0.5), (t64([0.3, 1.2]),))
    rng = np.random.default_rng(0)
    abc = [t64(rng.standard_normal((2, 3))) for _ in range(3)]
    assert nt.gradcheck(MulAdd.apply, abc)


def test_custom_function_mixed_constant_and_tensor_inputs():
    a, c = t64([1.0, 2.0]), t64([0.5, 0.5])
    y = MulAdd.apply(a, np.array([3.0, 4.0]), c)  # b is a constant array
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0, 4.0])
    np.testing.assert_array_equal(c.grad, [1.0, 1.0])


def test_custom_function_returning_the_wrong_number_of_gradients():
    class Broken(nt.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g  # one gradient for two inputs

    with pytest.raises(RuntimeError, match="returned 1 gradients for 2 inputs"):
        Broken.apply(t64([1.0]), t64([2.0])).sum().backward()


# ----------------------------------------------------------------------------- gradcheck itself
class WrongBackward(nt.Function):
    """a * b whose backward for b is off by 10% at one element."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        gb = g * a
        gb[1, 2] *= 1.1
        return g * b, gb


def test_gradcheck_catches_a_wrong_backward_and_names_input_and_index():
    rng = np.random.default_rng(0)
    a, b = t64(rng.uniform(1, 2, (2, 3))), t64(rng.uniform(1, 2, (2, 3)))
    with pytest.raises(nt.GradcheckError, match=r"input 1 \(shape \(2, 3\)\) at index \(1, 2\)"):
        nt.gradcheck(WrongBackward.apply, (a, b))
    assert nt.gradcheck(WrongBackward.apply, (a, b), raise_exception=False) is False
    with pytest.raises(nt.GradcheckError, match="directional gradcheck failed"):
        nt.gradcheck_direction(WrongBackward.apply, (a, b))
    assert issubclass(nt.GradcheckError, AssertionError)


def test_gradcheck_leaves_inputs_unchanged_and_needs_float64():
    rng = np.random.default_rng(1)
    a = t64(rng.standard_normal((2, 2)))
    before = a.data.copy()
    assert nt.gradcheck(lambda t: (t * t).tanh(), (a,))
    assert nt.gradcheck_direction(lambda t: (t * t).tanh(), (a,))
    np.testing.assert_array_equal(a.data, before)
    assert a.grad is None
    with pytest.raises(TypeError, match="float64"):
        nt.gradcheck(lambda t: t * 2, (nt.ones(2, requires_grad=True),))
    with pytest.raises(ValueError, match="requires_grad"):
        nt.gradcheck(lambda t: t * 2, (t64([1.0], requires_grad=False),))


# ----------------------------------------------------------------------------- dtype rules
def test_python_floats_default_to_float32():
    assert nt.tensor([1.0, 2.0]).dtype == np.float32
    assert nt.tensor(1.5).dtype == np.float32
    assert nt.ones(2).dtype == nt.randn(2).dtype == nt.zeros(1).dtype == np.float32
    assert nt.tensor([1, 2]).dtype == np.int64
    assert nt.tensor(np.array([1.0])).dtype == np.float64  # NumPy arrays keep their dtype


def test_set_default_dtype(default_float64):
    assert nt.tensor([1.0]).dtype == np.float64
    assert nt.randn(2).dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64"):
        nt.set_default_dtype(np.int32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ops_keep_the_dtype_and_grads_have_the_leaf_dtype(dtype):
    x = nt.Tensor(np.array([[0.5, 1.5], [2.0, 3.0]], dtype=dtype), requires_grad=True)
    y = (2.0 * x + 1) / 3 - x**2 + x.exp().log().sqrt() * 0.5 + x.tanh().sigmoid()
    y = F.gelu(y) + F.gelu(y, approximate="tanh") + y.relu().abs()
    z = F.layer_norm(y @ x.T, 2).softmax(-1).mean(axis=0) + y.var() + y.max() - y.min()
    assert y.dtype == dtype and z.dtype == dtype
    loss = F.cross_entropy(y, np.array([0, 1]), label_smoothing=0.1) + z.sum()
    assert loss.dtype == dtype
    loss.backward()
    assert x.grad.dtype == dtype


def test_mixed_dtype_gradient_is_cast_to_the_leaf_dtype():
    # regression: a float64 gradient used to land in the .grad of a float32 leaf
    x = nt.ones(3, requires_grad=True)  # float32
    w = t64([1.0, 2.0, 3.0])  # float64
    (x * w).sum().backward()  # promoted to float64, like PyTorch
    assert w.grad.dtype == np.float64
    assert x.grad.dtype == np.float32


def test_iterative_topological_order_equals_the_textbook_recursion():
    """The engine's explicit-stack sort and micrograd's recursion: same nodes, both valid."""
    from numtrans.autograd.engine import topological_order, topological_order_recursive

    rng = np.random.default_rng(0)
    a = nt.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = nt.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    h = (a @ b).tanh()
    shared = h * h  # a node reached twice
    out = (shared + h.exp()).sum() + (a.sum(dim=0) * 2.0).mean()
    fast, textbook = topological_order(out), topological_order_recursive(out)
    assert sorted(map(id, fast)) == sorted(map(id, textbook)) and len(fast) == len(
        set(map(id, fast))
    )
    for order in (fast, textbook):
        position = {id(t): i for i, t in enumerate(order)}
        for node in order:  # every parent before its child
            for parent in node._parents:
                if parent.requires_grad:
                    assert position[id(parent)] < position[id(node)]


def test_deep_chain_backward_needs_no_recursion():
    x = nt.tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(3000):  # deeper than Python's recursion limit
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(2))


# ----------------------------------------------------------------------------- engine buffers
def _backward_peak(out) -> int:
    """Bytes the backward of ``out`` allocates at its peak (NumPy reports to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out.backward()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_split_pieces_share_one_gradient_buffer():
    """q, k, v = x.split(C, -1): the engine keeps one buffer of x's size, not three zero arrays
    and their sums (the textbook slice backward, measured alongside so the bound means
    something)."""
    from numtrans.ops.shape import slice_textbook

    rng = np.random.default_rng(0)
    C = 256
    x = nt.tensor(rng.standard_normal((C, 3 * C)), requires_grad=True)
    consts = [rng.standard_normal((C, C)) for _ in range(3)]
    size = x.data.nbytes

    def loss(pieces):
        return sum(((p * c).sum() for p, c in zip(pieces, consts)), nt.tensor(0.0))

    tuned = _backward_peak(loss(x.split(C, dim=-1)))
    tuned_grad = x.grad
    x.grad = None
    index = [(slice(None), slice(i * C, (i + 1) * C)) for i in range(3)]
    textbook = _backward_peak(loss([slice_textbook(x, i) for i in index]))
    np.testing.assert_array_equal(tuned_grad, x.grad)
    np.testing.assert_array_equal(tuned_grad, np.concatenate(consts, axis=1))
    assert textbook > 2.5 * size  # three zero arrays alive at once (and the sums)
    assert tuned < 1.6 * size  # one buffer (plus one piece's product in flight)


def test_in_place_sums_never_write_into_a_gradient_an_op_returned():
    """add's backward hands the same array g to both a and b, which each get one more term:
    summing in place into g would change the other's gradient too. The terms come in every
    order, so that in some of them g arrives before the other term (and the other is read
    after the sum)."""
    import itertools

    c1, c2, c3 = (np.array(v) for v in ([1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [4.0, 0.0, -3.0]))
    terms = [
        lambda a, b: ((a + b) * c1).sum(),
        lambda a, b: (a * c2).sum(),
        lambda a, b: (b * c3).sum(),
    ]
    for order in itertools.permutations(terms):
        for textbook in (False, True):
            a, b = t64([1.0, -2.0, 0.5]), t64([3.0, 0.0, 1.0])
            out = order[0](a, b) + order[1](a, b) + order[2](a, b)
            nt.autograd.engine.run_backward(out, textbook=textbook)
            np.testing.assert_array_equal(a.grad, c1 + c2)
            np.testing.assert_array_equal(b.grad, c1 + c3)


def test_in_place_accumulation_leaves_the_gradient_the_caller_holds_alone():
    x = t64([1.0, 2.0])
    (x * 2.0 + x * 3.0).sum().backward()  # two contributions: an engine-owned buffer
    held = x.grad
    (x * x + x[0] + x[1]).sum().backward()  # dense and slices (each x[i] broadcast to 2)
    np.testing.assert_array_equal(held, [5.0, 5.0])  # the old array is unchanged
    np.testing.assert_array_equal(x.grad, [5.0 + 2 * 1.0 + 2, 5.0 + 2 * 2.0 + 2])
    assert not np.shares_memory(held, x.grad)
    h = x * 1.0
    h.retain_grad()
    (h + h + h).sum().backward()  # h: g three times (twice the same array) -> owned buffer
    np.testing.assert_array_equal(h.grad, [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [12.0, 14.0])
    assert not np.shares_memory(h.grad, x.grad)


def _same_as_textbook(graph, w) -> None:
    """x.grad of graph(x) at x = w: the tuned accumulation gives the textbook's bits."""
    grads = []
    for textbook in (False, True):
        x = nt.tensor(w.copy(), requires_grad=True)
        nt.autograd.engine.run_backward(graph(x), textbook=textbook)
        grads.append(x.grad)
    np.testing.assert_array_equal(grads[0], grads[1])


def test_slices_and_whole_uses_mix_in_either_order():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 6))
    graphs = [
        lambda x: (x[1:3] * 2.0).sum() + (x * w).sum() + x[:, 2].sum(),  # slice, whole, slice
        lambda x: (x * w).sum() + (x[0] * x[0]).sum() + x[..., None][0, 1:4].sum(),
        lambda x: sum(p.sum() * (i + 1) for i, p in enumerate(x.split([1, 2, 3], dim=1))),
    ]
    for graph in graphs:
        _same_as_textbook(graph, w)
    assert nt.gradcheck(graphs[0], (nt.tensor(w.copy(), requires_grad=True),))


def test_a_slice_gradient_of_the_wrong_shape_names_the_op():
    from numtrans.autograd.engine import SliceGrad
    from numtrans.tensor import make_result

    x = t64([1.0, 2.0, 3.0])
    y = make_result(x.data[:2], (x,), lambda g: (SliceGrad((slice(0, 2),), g[:1]),), "bad_slice")
    with pytest.raises(RuntimeError, match=r"'bad_slice' returned a gradient of shape \(1,\) at"):
        y.sum().backward()


def test_a_split_backward_makes_no_zero_array(monkeypatch):
    """The pieces of a split are written into an uninitialised buffer that they cover whole:
    no zeros of the input's size (the issue's "no activation-sized zero arrays")."""
    from numtrans.autograd import engine

    made = []
    real = np.zeros
    monkeypatch.setattr(engine.np, "zeros", lambda shape, *a, **k: made.append(shape) or real(
        shape, *a, **k))  # fmt: skip
    rng = np.random.default_rng(0)
    x = nt.tensor(rng.standard_normal((4, 5, 12)), requires_grad=True)
    q, k, v = x.split(4, dim=-1)
    ((q * 2.0).sum() + (k * 3.0).sum() + (v * v).sum()).backward()
    assert not [shape for shape in made if np.prod(shape) >= x.data.size], made  # (numpy-wide)
    want = np.concatenate([np.full((4, 5, 4), 2.0), np.full((4, 5, 4), 3.0), 2 * x.data[..., 8:]],
                          axis=-1)  # fmt: skip
    np.testing.assert_array_equal(x.grad, want)


@given(
    pieces=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 9), st.integers(0, 9),
                              st.sampled_from(["slice", "dense", "row"])),
                    min_size=1, max_size=5),
    seed=st.integers(0, 2**31),
)  # fmt: skip
@settings(max_examples=60, deadline=None)
def test_slices_in_any_pattern_equal_the_textbook_sums(pieces, seed):
    """Pieces along one axis or another, overlapping or leaving gaps, mixed with whole uses and
    integer rows: the tuned accumulation (unzeroed buffers, gaps zeroed late) gives the same
    bits as a new zeroed array per contribution."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 9, 3))
    weights = [rng.standard_normal((4, 9, 3)) for _ in pieces]

    def graph(x):
        total = nt.tensor(0.0)
        for (axis, a, b, kind), c in zip(pieces, weights):
            if kind == "dense":
                part, cw = x, c
            elif kind == "row":
                part, cw = x[a % 4], c[a % 4]
            else:
                axis = min(axis, 2)
                index = (slice(None),) * axis + (slice(min(a, b), max(a, b)),)
                part, cw = x[index], c[index]
            total = total + (part * nt.tensor(cw)).sum()
        return total

    _same_as_textbook(graph, w)


def test_along_one_axis_reads_basic_indices():
    from numtrans.autograd.engine import along_one_axis

    shape = (4, 6, 8)
    assert along_one_axis((slice(None), slice(None), slice(2, 5)), shape) == (2, 2, 5)
    assert along_one_axis((Ellipsis, slice(-3, None)), shape) == (2, 5, 8)
    assert along_one_axis((slice(1, 3),), shape) == (0, 1, 3)
    assert along_one_axis(slice(1, 3), shape) == (0, 1, 3)
    assert along_one_axis((slice(None),), shape) == (0, 0, 4)  # everything
    assert along_one_axis((slice(5, 2),), shape) == (0, 4, 4)  # empty (5 clipped to the size 4)
    for index in [(0,), (slice(None), 1), (slice(0, 4, 2),), (slice(1, 2), slice(1, 2)), (None,)]:
        assert along_one_axis(index, shape) is None, index
