"""Exact int8 matrix multiply: C (M, N) int32 = A (M, K) int8 @ B (K, N) int8.

The native kernel (csrc/cpu/int8_gemm.cpp) uses AVX-512 VNNI's ``vpdpbusd`` (4 int8 products
summed into each int32 lane per instruction) or AVX2's ``vpmaddwd``, picked at run time, and a
scalar reference. Without the extension NumPy computes the same product in int32; NumPy's integer
matmul does not call BLAS (BLAS has no integer GEMM), so that fallback is far slower than a float
GEMM -- ``benchmarks/compression.py`` measures it.
"""

from __future__ import annotations

import numpy as np

try:  # the optional C++ extension; an older build may lack the int8 kernel
    from .. import _cpu as _native
except ImportError:  # pragma: no cover - depends on the build
    _native = None

MAX_K = 131072  # |C| <= K * 128 * 128 must fit in int32 (2^31)


def native_int8_available() -> bool:
    return _native is not None and hasattr(_native, "int8_matmul")


def int8_isas() -> list[str]:
    """Kernels usable here, best first: some of avx512_vnni, avx2, scalar; or ["numpy"]."""
    return list(_native.int8_isas()) + ["numpy"] if native_int8_available() else ["numpy"]


def _check(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != np.int8 or b.dtype != np.int8:
        raise ValueError(f"int8_matmul needs int8 inputs, got {a.dtype} and {b.dtype}")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"int8_matmul needs 2-D inputs, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"int8_matmul: inner sizes differ, {a.shape} @ {b.shape}")
    if a.shape[1] > MAX_K:
        raise ValueError(f"int8_matmul: K = {a.shape[1]} > {MAX_K} could overflow int32")
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def int8_matmul(a, b, isa: str | None = None) -> np.ndarray:
    """a: int8 (M, K), b: int8 (K, N) -> int32 (M, N), exact.

    ``isa`` forces one kernel ("avx512_vnni", "avx2", "scalar" or "numpy"); None picks the best."""
    a, b = _check(a, b)
    if isa == "numpy" or (isa is None and not native_int8_available()):
        return np.matmul(a.astype(np.int32), b.astype(np.int32))
    if not native_int8_available():
        raise ValueError(f"int8 kernel {isa!r} needs the numtrans._cpu extension; use 'numpy'")
    if isa is not None and isa not in _native.int8_isas():
        raise ValueError(f"int8 kernel {isa!r} is not usable here; choose from {int8_isas()}")
    out, _ = _native.int8_matmul(a, b, isa or "")
    return out
