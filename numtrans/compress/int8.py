"""Exact int8 matrix multiply: C (M, N) int32 = A (M, K) int8 @ B (K, N) int8.

The native kernels (csrc/cpu/int8_kernels.cpp) use AVX-512 VNNI's ``vpdpbusd`` (4 int8 products
summed into each int32 lane per instruction) or AVX2's ``vpmaddwd``, picked at run time, beside
a scalar reference. They read B in a packed layout (panels of 64 columns, rows in groups of 4;
see ``csrc/cpu/int8_gemm.hpp``), which ``pack_int8`` makes once per weight, so a layer does
not repack its weight on every call:

    packed = pack_int8(b)                      # once, when a layer is quantized or loaded
    c = int8_matmul_packed(a, packed)          # every call: exact int32 (M, N)
    y = int8_linear(x, packed, w_scale, bias)  # the QuantizedLinear forward, fused

Without the extension NumPy computes the same products in int32. NumPy's integer matmul does
not call BLAS (BLAS has no integer GEMM), so that fallback is far slower than a float32 GEMM;
``benchmarks/compression.py`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:  # the optional C++ extension; an older build may lack the int8 kernels
    from .. import _cpu as _native
except ImportError:  # pragma: no cover - depends on the build
    _native = None

MAX_K = 131072  # |C| <= K * 128 * 128 must fit in int32 (2^31)
QMAX8 = 127
PANEL = 64  # columns per panel of packed B (csrc/cpu/int8_gemm.hpp: kNR)


def native_int8_available() -> bool:
    return _native is not None and hasattr(_native, "int8_linear")


def int8_isas() -> list[str]:
    """Kernels usable here, best first: some of avx512_vnni, avx2, scalar; then "numpy"."""
    return list(_native.int8_isas()) + ["numpy"] if native_int8_available() else ["numpy"]


def _check_isa(isa):
    if isa is None or isa == "numpy":
        return
    if not native_int8_available():
        raise ValueError(f"int8 kernel {isa!r} needs the numtrans._cpu extension; use 'numpy'")
    if isa not in _native.int8_isas():
        raise ValueError(f"int8 kernel {isa!r} is not usable here; choose from {int8_isas()}")


def _use_numpy(isa) -> bool:
    return isa == "numpy" or (isa is None and not native_int8_available())


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

    ``isa`` forces one kernel ("avx512_vnni", "avx2", "scalar" or "numpy"); None picks the best.
    This packs ``b`` on every call; a weight used many times should be packed once with
    ``pack_int8`` and multiplied with ``int8_matmul_packed``."""
    a, b = _check(a, b)
    _check_isa(isa)
    if _use_numpy(isa):
        return np.matmul(a.astype(np.int32), b.astype(np.int32))
    out, _ = _native.int8_matmul(a, b, isa or "")
    return out


@dataclass(frozen=True)
class PackedInt8:
    """An int8 B (K, N) in the kernels' layout, made once by ``pack_int8``.

    data: int8 (P, G, 256), P = ceil(N / 64) panels, G = ceil(K / 4) k-groups; byte
    (p, g, 4c + j) is B[4g + j, 64p + c] (zero past the edges). offset: int32 (64 P,), -128 times
    each column's sum, undoing the +128 shift the kernel gives A. Without the extension ``data``
    is B itself and ``offset`` is empty."""

    k: int
    n: int
    data: np.ndarray
    offset: np.ndarray

    @property
    def native(self) -> bool:
        return self.data.ndim == 3

    def unpack(self) -> np.ndarray:
        """B (K, N) back from the layout: (P, G, 64, 4) -> (G, 4, P, 64) -> (4G, 64P), trimmed."""
        if not self.native:
            return self.data
        p, g = self.data.shape[:2]
        blocks = self.data.reshape(p, g, PANEL, 4).transpose(1, 3, 0, 2)
        return blocks.reshape(4 * g, PANEL * p)[: self.k, : self.n]


def pack_int8(b) -> PackedInt8:
    """Pack an int8 B (K, N) for ``int8_matmul_packed`` / ``int8_linear`` (O(K N), once)."""
    b = np.asarray(b)
    if b.dtype != np.int8 or b.ndim != 2:
        raise ValueError(f"pack_int8 needs a 2-D int8 array, got {b.dtype} {b.shape}")
    if b.shape[0] > MAX_K:
        raise ValueError(f"pack_int8: K = {b.shape[0]} > {MAX_K} could overflow int32")
    b = np.ascontiguousarray(b)
    if not native_int8_available():
        return PackedInt8(b.shape[0], b.shape[1], b, np.zeros(0, np.int32))
    data, offset = _native.int8_pack_b(b)
    return PackedInt8(b.shape[0], b.shape[1], data, offset)


def int8_matmul_packed(a, packed: PackedInt8, isa: str | None = None) -> np.ndarray:
    """a: int8 (M, K) @ the packed B (K, N) -> int32 (M, N), exact."""
    a = np.asarray(a)
    if a.dtype != np.int8 or a.ndim != 2 or a.shape[1] != packed.k:
        raise ValueError(
            f"int8_matmul_packed needs an int8 (M, {packed.k}) array, got {a.dtype} {a.shape}"
        )
    _check_isa(isa)
    if _use_numpy(isa) or not packed.native:
        return np.matmul(a.astype(np.int32), packed.unpack().astype(np.int32))
    out, _ = _native.int8_matmul_packed(
        np.ascontiguousarray(a), packed.data, packed.offset, packed.n, isa or ""
    )
    return out


def quantize_rows_int8(x: np.ndarray):
    """x (rows, in) float -> (xq int8, scale (rows,)): the dynamic per-token activation scale,
    s[r] = max_i |x[r, i]| / 127 (1 for an all-zero row), xq = clip(rint(x / s), -127, 127)."""
    amax = np.abs(x).max(axis=1) if x.shape[1] else np.zeros(x.shape[0], x.dtype)
    scale = np.where(amax > 0, amax / QMAX8, 1.0).astype(np.float32)
    return np.clip(np.rint(x / scale[:, None]), -QMAX8, QMAX8).astype(np.int8), scale


def int8_linear(x, packed: PackedInt8, w_scale, bias=None, isa: str | None = None) -> np.ndarray:
    """The dynamic-int8 linear layer, float32 x (M, K) -> float32 (M, N):

        xq, s_x = quantize_rows_int8(x)
        y[i, n] = float(xq @ B)[i, n] * s_x[i] * w_scale[n] + bias[n]

    The native path does all three steps in one call (no int8 or int32 array reaches Python);
    the NumPy path spells them out, and the two agree bit for bit."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != packed.k:
        raise ValueError(f"int8_linear needs x of shape (M, {packed.k}), got {x.shape}")
    w_scale = np.ascontiguousarray(w_scale, dtype=np.float32)
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
    _check_isa(isa)
    if _use_numpy(isa) or not packed.native:
        xq, sx = quantize_rows_int8(x)
        acc = int8_matmul_packed(xq, packed, "numpy" if _use_numpy(isa) else isa)
        out = acc.astype(np.float32) * sx[:, None] * w_scale[None, :]
        return out if bias is None else out + bias
    return _native.int8_linear(x, packed.data, packed.offset, packed.n, w_scale, bias, isa or "")
