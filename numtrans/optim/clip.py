"""Gradient clipping by global norm (``torch.nn.utils.clip_grad_norm_``).

All gradients are treated as one long vector ``G``::

    total_norm = ||G||_p = || (||g_1||_p, ||g_2||_p, ...) ||_p
    coef = min(max_norm / (total_norm + 1e-6), 1)
    g_i *= coef                   # same direction, length at most max_norm

Clipping the *global* norm (rather than each tensor separately) keeps the direction of the update
and only shortens it, which tames the occasional huge gradient early in Transformer training.
The 1e-6 (as in PyTorch) avoids dividing by zero when every gradient is zero.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor


def _grads(parameters) -> list[np.ndarray]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"expected Tensors (parameters), got {type(p).__name__}")
        if p.grad is not None:
            grads.append(p.grad)
    return grads


def _norm(x: np.ndarray, norm_type: float) -> float:
    if norm_type == 2.0:
        flat = x.reshape(-1)
        return math.sqrt(float(np.dot(flat, flat)))  # BLAS dot: no temporary the size of x
    if math.isinf(norm_type):
        return float(np.abs(x).max()) if x.size else 0.0
    return float(np.sum(np.abs(x) ** norm_type) ** (1.0 / norm_type))


def _total_norm(grads: list[np.ndarray], norm_type: float) -> float:
    norms = np.array([_norm(g, norm_type) for g in grads], dtype=np.float64)
    return _norm(norms, norm_type) if norms.size else 0.0


def get_total_norm(parameters, norm_type: float = 2.0) -> float:
    """The norm of all gradients of ``parameters`` as one vector (grads that are None skipped)."""
    return _total_norm(_grads(parameters), float(norm_type))


def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> float:
    """Scale the gradients in place so their global norm is at most ``max_norm``.

    Returns the total norm *before* clipping (log it: spikes show instability). A NaN/inf norm
    turns the gradients into NaN, as in PyTorch; ``error_if_nonfinite=True`` raises instead.

    >>> import numtrans as nt
    >>> w = nt.tensor([3.0, 4.0], requires_grad=True)
    >>> (w * nt.tensor([3.0, 4.0])).sum().backward()   # grad = [3, 4], norm 5
    >>> clip_grad_norm_([w], max_norm=1.0)
    5.0
    >>> w.grad.round(4)
    array([0.6, 0.8], dtype=float32)
    """
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
    grads = _grads(parameters)
    total_norm = _total_norm(grads, norm_type)
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is {total_norm}: some gradient "
            "is NaN or inf (set error_if_nonfinite=False to clip anyway)"
        )
    clip_coef = max_norm / (total_norm + 1e-6)
    if not clip_coef >= 1.0:  # already short enough: leave the gradients alone (NaN falls through)
        for g in grads:
            g *= clip_coef
    return total_norm
