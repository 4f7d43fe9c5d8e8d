"""int8_matmul is bit-exact against a NumPy int32 reference, for every kernel usable here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numtrans.compress import int8_isas, int8_matmul

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
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    if fill == "min":  # -128 * -128 everywhere: the largest positive sums
        a[:], b[:] = -128, -128
    elif fill == "max":
        a[:], b[:] = -128, 127
    elif fill == "zero_rows" and m:
        a[::2] = 0
    out = int8_matmul(a, b, isa=isa)
    assert out.dtype == np.int32 and out.shape == (m, n)
    np.testing.assert_array_equal(out, reference(a, b))


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
