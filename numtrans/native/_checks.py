"""The argument checks shared by the CPU (``attention.py``) and GPU (``cuda.py``) wrappers.

Both take q (B, H, N, D), k (B, H, M, D), v (B, H, M, Dv) — the shape letters of the glossary in
``numtrans/functional/attention.py`` — and must refuse the same bad input with the same words
before any kernel sees it. Only how an array is read (NumPy's ``.shape``/``.dtype`` or a CUDA
array's descriptor) differs, so these functions take plain shapes and dtypes.
"""

from __future__ import annotations

import math

import numpy as np

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_rank_and_dtype(name: str, shape: tuple, dtype) -> None:
    """One of q, k, v (or grad_out, out): 4 dims and float32/float64."""
    if len(shape) != 4:
        letter = "N" if name in ("q", "grad_out", "out") else "M"
        raise ValueError(f"{name} must have 4 dims (B, H, {letter}, D), got shape {tuple(shape)}")
    if np.dtype(dtype) not in FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")


def check_qkv(q_shape, k_shape, v_shape, q_dtype, k_dtype, v_dtype) -> tuple[int, ...]:
    """Check q, k, v against each other; return (B, H, N, M, D, Dv)."""
    for name, shape, dtype in (
        ("q", q_shape, q_dtype),
        ("k", k_shape, k_dtype),
        ("v", v_shape, v_dtype),
    ):
        check_rank_and_dtype(name, shape, dtype)
    if not (np.dtype(q_dtype) == np.dtype(k_dtype) == np.dtype(v_dtype)):
        raise TypeError(f"q, k and v must share one dtype, got {q_dtype}, {k_dtype}, {v_dtype}")
    B, H, N, D = q_shape
    if tuple(k_shape[:2]) != (B, H) or tuple(v_shape[:2]) != (B, H):
        raise ValueError(
            f"q, k and v must have the same batch and head dims (B, H) = {(B, H)}; "
            f"got k {tuple(k_shape)}, v {tuple(v_shape)}"
        )
    if k_shape[3] != D:
        raise ValueError(
            f"q and k must have the same head dim D: q {tuple(q_shape)}, k {tuple(k_shape)}"
        )
    M = k_shape[2]
    if v_shape[2] != M:
        raise ValueError(
            f"v must have one row per key: k {tuple(k_shape)} has M={M}, v {tuple(v_shape)}"
        )
    return B, H, N, M, D, v_shape[3]


def resolve_scale(scale, D: int) -> float:
    """``scale`` as a finite float, 1/sqrt(D) when None."""
    if scale is None:
        if D == 0:
            raise ValueError("head dim D is 0: pass an explicit scale")
        scale = 1.0 / math.sqrt(D)
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    return scale


def check_mask_args(attn_mask, is_causal: bool) -> None:
    if attn_mask is not None and is_causal:
        raise ValueError("pass either attn_mask or is_causal=True, not both (as in PyTorch)")


def check_mask_rank(mask_shape: tuple) -> None:
    if len(mask_shape) > 4:
        raise ValueError(f"attn_mask must have at most 4 dims, got shape {tuple(mask_shape)}")


def broadcast_error(mask_shape: tuple, full: tuple) -> ValueError:
    return ValueError(
        f"attn_mask of shape {tuple(mask_shape)} does not broadcast to (B, H, N, M) = {full}"
    )
