"""The NumPy path of ``numtrans.native``: attention written out in full, as the textbook does.

This is the readable reference the fused kernels are compared with (and what
``backend="numpy"`` runs). It materialises the whole score matrix, (B, H, N, M) numbers, so
its memory grows like N * M; the C++ kernel in ``csrc/cpu/attention_*.cpp`` computes the same
numbers tile by tile in O(tile) memory.

Forward, for one (batch, head), with ``s = scale * q @ k.T + mask``  (N, M)::

    m   = max_j s_ij                   (subtracted so that exp never overflows)
    l   = sum_j exp(s_ij - m_i)
    P   = exp(s - m) / l               out = P @ v            lse_i = m_i + log l_i

Backward, given ``dout = dL/dout``::

    dv = P.T @ dout          dP = dout @ v.T          D_i = sum_d dout_id out_id
    dS = P * (dP - D)        dq = scale dS @ k        dk = scale dS.T @ q

A query whose keys are all masked has an empty softmax: its output row, its lse (-inf) and all
gradients through it are defined as zeros (PyTorch's "safe softmax"), never NaN.
"""

from __future__ import annotations

import numpy as np


def _scores(q, k, mask, is_causal, scale):
    """s = scale * q k^T with masked positions at -inf (a float mask is added)."""
    s = (q * scale) @ np.swapaxes(k, -1, -2)  # (B, H, N, M)
    N, M = s.shape[-2:]
    if is_causal:  # top-left aligned: query i sees keys j <= i
        s = np.where(np.arange(M)[None, :] <= np.arange(N)[:, None], s, -np.inf)
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    return s


def _probabilities(s):
    """Row softmax of s and the log-sum-exp; rows that are all -inf give P = 0, lse = -inf."""
    m = s.max(axis=-1, keepdims=True)
    empty = ~np.isfinite(m)  # an all -inf row (its max is -inf)
    m = np.where(empty, 0.0, m)
    e = np.exp(s - m)
    l = e.sum(axis=-1, keepdims=True)
    p = e / np.where(empty, 1.0, l)
    with np.errstate(divide="ignore"):
        lse = np.where(empty, -np.inf, m + np.log(l))[..., 0]
    return p, lse


def forward_numpy(q, k, v, mask, is_causal, scale):
    """(out, lse) in the dtype of q; inputs already validated, mask broadcastable to (B,H,N,M)."""
    p, lse = _probabilities(_scores(q, k, mask, is_causal, scale))
    return (p @ v).astype(q.dtype, copy=False), lse.astype(q.dtype, copy=False)


def backward_numpy(grad_out, q, k, v, out, lse, mask, is_causal, scale):
    """(dq, dk, dv): recompute P from lse like the fused kernel does, then the five products."""
    s = _scores(q, k, mask, is_causal, scale)
    with np.errstate(invalid="ignore"):  # -inf - (-inf) in empty rows; replaced below
        p = np.exp(s - lse[..., None])
    p = np.where(np.isneginf(lse)[..., None], 0.0, p)
    dv = np.swapaxes(p, -1, -2) @ grad_out
    dp = grad_out @ np.swapaxes(v, -1, -2)
    d = np.sum(grad_out * out, axis=-1, keepdims=True)
    ds = p * (dp - d)
    dq = scale * (ds @ k)
    dk = scale * (np.swapaxes(ds, -1, -2) @ q)
    return tuple(g.astype(q.dtype, copy=False) for g in (dq, dk, dv))
