"""Matrix multiplication, ``C = A @ B``, with NumPy's batching and 1-D rules.

For 2-D operands, C_ij = sum_k A_ik B_kj, so

    dA = dC @ B^T        (m, k) = (m, n) @ (n, k)
    dB = A^T @ dC        (k, n) = (k, m) @ (m, n)

Batched operands (..., m, k) @ (..., k, n) use the same formulas per batch; batch axes that were
broadcast are summed (``unbroadcast``). A 1-D ``A`` is treated as a row (1, k) and a 1-D ``B`` as a
column (k, 1); the added axis is removed again, in the output and in the gradient.
"""

from __future__ import annotations

import numpy as np

from ..tensor import make_result
from .arithmetic import as_tensor, unbroadcast


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs at least 1-D operands, got shapes {a.shape} and {b.shape}")
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if ka != kb:
        raise ValueError(
            f"matmul shape mismatch: {a.shape} @ {b.shape} (inner dimensions {ka} and {kb} differ)"
        )
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul shape mismatch: {a.shape} @ {b.shape} (batch dimensions "
            f"{a.shape[:-2]} and {b.shape[:-2]} do not broadcast)"
        ) from None


def matmul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    _check(a.data, b.data)
    out = np.matmul(a.data, b.data)

    def backward(g):
        A = a.data[None, :] if a.ndim == 1 else a.data  # (..., m, k)
        B = b.data[:, None] if b.ndim == 1 else b.data  # (..., k, n)
        # the output with the removed 1-D axes put back: batch + (m, n)
        batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
        G = g.reshape(batch + (A.shape[-2], B.shape[-1]))
        ga = gb = None
        if a.requires_grad:
            ga = np.matmul(G, np.swapaxes(B, -1, -2))
            ga = unbroadcast(ga, A.shape).reshape(a.shape)
        if b.requires_grad:
            if A.ndim > 2 and B.ndim == 2:
                # (..., m, k) with a shared (k, n): fold the batch into rows, one big GEMM
                gb = A.reshape(-1, A.shape[-1]).T @ G.reshape(-1, G.shape[-1])
            else:
                gb = unbroadcast(np.matmul(np.swapaxes(A, -1, -2), G), B.shape)
            gb = gb.reshape(b.shape)
        return ga, gb

    return make_result(out, (a, b), backward, "matmul")
