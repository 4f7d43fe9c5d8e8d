"""int8_matmul (one-shot and with B packed once) is bit-exact against a NumPy int32 reference,
for every kernel usable here; the fused int8_linear equals its NumPy spelling bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numtrans.compress import (
    int8_isas,
    int8_linear,
    int8_matmul,
    int8_matmul_packed,
    native_int8_available,
    pack_int8,
)

ISAS = int8_isas()  # e.g. avx512_vnni, avx2, scalar, numpy


def reference(a, b):
    return a.astype(np.int64) @ b.astype(np.int64)


@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(0, 21),
    k=st.integers(0, 70),
    n=st.integers(0, 40),
    seed=st.integers(0, 2**32 - 1),
    fill=st.sampled_from(["random", "min", "max", "zero_rows"]),
)
def test_bit_exact(isa, m, k, n, seed, fill):
    a, b = operands(m, k, n, seed, fill)
    out = int8_matmul(a, b, isa=isa)
    assert out.dtype == np.int32 and out.shape == (m, n)
    np.testing.assert_array_equal(out, reference(a, b))


def operands(m, k, n, seed, fill):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    if fill == "min":  # -128 * -128 everywhere: the largest positive sums
        a[:], b[:] = -128, -128
    elif fill == "max":
        a[:], b[:] = -128, 127
    elif fill == "zero_rows" and m:
        a[::2] = 0
    return a, b


@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(0, 20),  # several 6-row tiles and a partial one
    k=st.integers(0, 300),  # past one 256-value cache block
    n=st.integers(0, 140),  # two 64-column panels and a partial third
    seed=st.integers(0, 2**32 - 1),
    fill=st.sampled_from(["random", "min", "max", "zero_rows"]),
)
def test_packed_bit_exact(isa, m, k, n, seed, fill):
    a, b = operands(m, k, n, seed, fill)
    packed = pack_int8(b)
    np.testing.assert_array_equal(packed.unpack(), b)  # the layout holds exactly B
    out = int8_matmul_packed(a, packed, isa=isa)
    assert out.dtype == np.int32 and out.shape == (m, n)
    np.testing.assert_array_equal(out, reference(a, b))
    again = int8_matmul_packed(a[::-1].copy(), packed, isa=isa)  # the packing is reusable
    np.testing.assert_array_equal(again, reference(a[::-1], b))


@pytest.mark.skipif(not native_int8_available(), reason="needs the numtrans._cpu extension")
def test_packed_layout():
    b = np.arange(5 * 70, dtype=np.int64).reshape(5, 70).astype(np.int8)
    p = pack_int8(b)
    assert p.data.shape == (2, 2, 256) and p.offset.shape == (128,)
    assert p.data[1, 0, 4 * 3 + 2] == b[2, 64 + 3]  # byte (p, g, 4c + j) = B[4g + j, 64p + c]
    assert p.data[0, 1, 4 * 5 + 1] == 0  # row 5 of B does not exist: padding
    np.testing.assert_array_equal(p.offset[:70], -128 * b.astype(np.int64).sum(0))
    np.testing.assert_array_equal(p.offset[70:], 0)


@pytest.mark.parametrize("isa", ISAS)
@settings(max_examples=20, deadline=None)
@given(
    m=st.integers(0, 15),
    k=st.integers(1, 90),
    n=st.integers(1, 80),
    seed=st.integers(0, 2**32 - 1),
    bias=st.booleans(),
)
def test_fused_linear_matches_numpy(isa, m, k, n, seed, bias):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.01, 100)).astype(np.float32)
    if m:
        x[0] = 0  # an all-zero row: scale 1, output exactly the bias
    if m > 2:
        x[2, 0] = 1e4  # an outlier: the rest of its row rounds to few levels
    w = rng.integers(-127, 128, (k, n), dtype=np.int8)
    scale = rng.uniform(1e-4, 1e-1, n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32) if bias else None
    packed = pack_int8(w)
    expected = int8_linear(x, packed, scale, b, isa="numpy")
    got = int8_linear(x, packed, scale, b, isa=isa)
    assert got.dtype == np.float32 and got.shape == (m, n)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("isa", ISAS)
def test_model_shape_and_long_k(isa):
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (37, 1536), dtype=np.int8)
    b = rng.integers(-128, 128, (1536, 67), dtype=np.int8)
    np.testing.assert_array_equal(int8_matmul(a, b, isa=isa), reference(a, b))


def test_bad_inputs():
    a = np.zeros((2, 3), np.int8)
    with pytest.raises(ValueError, match="int8 inputs"):
        int8_matmul(a.astype(np.float32), np.zeros((3, 2), np.int8))
    with pytest.raises(ValueError, match="inner sizes"):
        int8_matmul(a, np.zeros((4, 2), np.int8))
    with pytest.raises(ValueError, match="not usable|needs the numtrans"):
        int8_matmul(a, np.zeros((3, 2), np.int8), isa="sse9")
    packed = pack_int8(np.zeros((3, 2), np.int8))
    with pytest.raises(ValueError, match=r"int8 \(M, 3\)"):
        int8_matmul_packed(np.zeros((2, 4), np.int8), packed)
    with pytest.raises(ValueError, match="shape"):
        int8_linear(np.zeros((2, 4), np.float32), packed, np.ones(2))
    with pytest.raises(ValueError, match="2-D int8"):
        pack_int8(np.zeros((3, 2), np.float32))


def test_without_the_extension(monkeypatch):
    """The NumPy fallback (no numtrans._cpu): the same exact products and the same layer."""
    import numtrans.compress.int8 as int8_mod

    rng = np.random.default_rng(5)
    a, b = operands(7, 33, 70, 5, "random")
    x = rng.standard_normal((7, 33)).astype(np.float32)
    scale, bias = rng.uniform(0.01, 0.1, 70).astype(np.float32), rng.standard_normal(70)
    with_native = int8_linear(x, pack_int8(b), scale, bias)
    monkeypatch.setattr(int8_mod, "_native", None)
    assert int8_isas() == ["numpy"] and not native_int8_available()
    packed = pack_int8(b)
    assert not packed.native and packed.unpack() is packed.data
    np.testing.assert_array_equal(int8_matmul_packed(a, packed), reference(a, b))
    np.testing.assert_array_equal(int8_matmul(a, b), reference(a, b))
    np.testing.assert_array_equal(int8_linear(x, packed, scale, bias), with_native)
    with pytest.raises(ValueError, match="needs the numtrans._cpu"):
        int8_matmul(a, b, isa="avx2")
