"""Fused attention writing into caller-chosen layouts (``out=``, ``dq=``, ``dk=``, ``dv=``).

The kernels write through the output's strides. Written into the transposed view of a
(B, N, H, D) buffer (``empty_like_heads``), the results are bitwise those of the contiguous
path, for the fast kernel on every instruction set, the scalar reference kernel and the NumPy
backend; and in a GPT the merge of the heads after attention is then a view, not a copy.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numtrans as nt
from numtrans import backends
from numtrans.native import attention_backward, attention_forward
from numtrans.native.attention import empty_like_heads

needs_cpu = pytest.mark.skipif(not backends.is_available("cpu"), reason=backends.reason("cpu"))
ISAS = backends.get("cpu").attention_isas().split(",") if backends.is_available("cpu") else []
VARIANTS = [("numpy", "fast", None)] + [
    pytest.param("cpu", kernel, isa, marks=needs_cpu)
    for kernel, isa in [("reference", None)] + [("fast", isa) for isa in ISAS]
]


def split_heads(B, H, N, D, dtype, seed):
    """q, k, v as a multi-head layer makes them: transposed views of one (B, N, 3 H D) array."""
    qkv = np.random.default_rng(seed).standard_normal((B, N, 3 * H * D)).astype(dtype)
    return [
        qkv[..., i * H * D : (i + 1) * H * D].reshape(B, N, H, D).transpose(0, 2, 1, 3)
        for i in range(3)
    ]


@pytest.mark.parametrize("backend, kernel, isa", VARIANTS)
@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 2), H=st.integers(1, 3), N=st.integers(1, 70), D=st.sampled_from([1, 8, 13]),
       causal=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31))  # fmt: skip
def test_outputs_in_the_heads_layout_equal_the_contiguous_ones(backend, kernel, isa, B, H, N, D,
                                                               causal, dtype, seed):  # fmt: skip
    q, k, v = split_heads(B, H, N, D, dtype, seed)
    kw = dict(backend=backend, kernel=kernel, isa=isa) if backend == "cpu" else {}
    plain, lse = attention_forward(q, k, v, is_causal=causal, **kw)
    out = empty_like_heads(q, plain.shape)
    got, lse2 = attention_forward(q, k, v, is_causal=causal, out=out, **kw)
    assert got is out and plain.flags.c_contiguous
    if H > 1 and N > 1:  # the memory of a (B, N, H, D) array: merging the heads is a view
        merged = got.transpose(0, 2, 1, 3).reshape(B, N, H * D)
        assert np.shares_memory(merged, out)
    np.testing.assert_array_equal(got, plain)
    np.testing.assert_array_equal(lse2, lse)

    g = np.random.default_rng(seed + 1).standard_normal(plain.shape).astype(dtype)
    want = attention_backward(g, q, k, v, plain, lse, is_causal=causal, **kw)
    bufs = [empty_like_heads(x, x.shape) for x in (q, k, v)]
    grads = attention_backward(g, q, k, v, got, lse, is_causal=causal, dq=bufs[0], dk=bufs[1],
                               dv=bufs[2], **kw)  # fmt: skip
    for got_g, buf, want_g in zip(grads, bufs, want):
        assert got_g is buf
        np.testing.assert_array_equal(got_g, want_g)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("cpu", marks=needs_cpu)])
def test_bad_output_arrays_are_refused(backend):
    q, k, v = split_heads(1, 2, 4, 8, np.float64, 0)
    f = lambda **kw: attention_forward(q, k, v, backend=backend, **kw)  # noqa: E731
    with pytest.raises(ValueError, match=r"out must be a NumPy array of shape \(1, 2, 4, 8\)"):
        f(out=np.empty((1, 2, 4, 7)))
    with pytest.raises(ValueError, match="dtype float64"):
        f(out=np.empty((1, 2, 4, 8), np.float32))
    with pytest.raises(ValueError, match="contiguous rows"):
        f(out=np.empty((1, 2, 8, 4)).transpose(0, 1, 3, 2))
    frozen = np.empty((1, 2, 4, 8))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        f(out=frozen)
    with pytest.raises(ValueError, match="out must not overlap the inputs"):
        f(out=k)  # the kernel would overwrite keys it still reads
    out, lse = f()
    g = np.ones_like(out)
    with pytest.raises(ValueError, match="dk must be a NumPy array"):
        attention_backward(g, q, k, v, out, lse, backend=backend, dk=np.empty((1, 2, 5, 8)))
    same = np.empty(q.shape)
    with pytest.raises(ValueError, match="dk must not overlap the inputs or the other outputs"):
        attention_backward(g, q, k, v, out, lse, backend=backend, dq=same, dk=same)


def test_empty_like_heads_follows_the_memory_order():
    q, _, _ = split_heads(2, 3, 5, 4, np.float32, 0)
    heads = empty_like_heads(q, (2, 3, 5, 6))
    assert heads.shape == (2, 3, 5, 6) and heads.transpose(0, 2, 1, 3).flags.c_contiguous
    plain = empty_like_heads(np.ascontiguousarray(q), (2, 3, 5, 6))
    assert plain.flags.c_contiguous and plain.dtype == np.float32
    assert empty_like_heads(q[:, :1], (2, 1, 5, 6)).flags.c_contiguous  # one head: no order


@needs_cpu
def test_a_gpt_merges_its_heads_without_a_copy():
    """Through the model: the attention output is heads-inner memory, so the (B, T, C) merge is a
    view of it, and training still gives PyTorch-equal gradients (test_gpt's parity tests)."""
    from numtrans.models.gpt import GPT, GPTConfig
    from numtrans.native.function import FusedAttention

    nt.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=11, n_layer=1, n_head=2, n_embd=16))
    seen = []
    forward = FusedAttention.forward

    def spy(ctx, *args):
        out = forward(ctx, *args)
        seen.append(out)
        return out

    FusedAttention.forward = staticmethod(spy)
    try:
        with backends.use("cpu"):
            x = np.random.default_rng(0).integers(0, 11, size=(3, 16))
            _, loss = model(x, x)
            loss.backward()
    finally:
        FusedAttention.forward = staticmethod(forward)
    (out,) = seen
    assert out.shape == (3, 2, 16, 8) and out.transpose(0, 2, 1, 3).flags.c_contiguous
    assert all(p.grad is not None and np.isfinite(p.grad).all() for p in model.parameters())
