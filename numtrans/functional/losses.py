"""Loss functions with PyTorch's semantics.

cross_entropy(logits, target)   logits (N, C) or (N, C, d1, ...) or (C,); target class ids
    loss_i = -[(1 - eps) log p_i[t_i] + (eps / C) sum_c log p_i[c]],  p_i = softmax(logits_i)
    dloss_i/dlogits_i = p_i - [(1 - eps) onehot(t_i) + eps / C]
    Positions whose target is ``ignore_index`` contribute nothing; ``reduction="mean"`` divides by
    the number of the others. If every target is ignored the mean is 0 with zero gradient
    (PyTorch returns NaN there).
nll_loss(log_probs, target)     loss_i = -log_probs_i[t_i]
mse_loss(input, target)         loss = mean((input - target)^2)
"""

from __future__ import annotations

import numpy as np

from .. import backends
from ..ops.arithmetic import as_tensor
from ..tensor import make_result
from .activations import _row_max

_REDUCTIONS = ("mean", "sum", "none")


def _classes_last(x: np.ndarray) -> np.ndarray:
    """(N, C, d1, ...) -> (N * d1 * ..., C), PyTorch's class axis moved last."""
    if x.ndim <= 2:
        return x.reshape(-1, x.shape[-1])
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _undo_classes_last(g2: np.ndarray, shape: tuple) -> np.ndarray:
    if len(shape) <= 2:
        return g2.reshape(shape)
    moved = (shape[0],) + shape[2:] + (shape[1],)
    return np.moveaxis(g2.reshape(moved), -1, 1)


def _target_shape(logits_shape: tuple) -> tuple:
    """(N, C, d1, ...) -> (N, d1, ...); (C,) -> ()."""
    return logits_shape[:1] + logits_shape[2:] if len(logits_shape) > 1 else ()


def _check_targets(logits_shape, t: np.ndarray, ignore_index: int) -> np.ndarray:
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"targets must be integer class ids, got dtype {t.dtype}")
    expected = _target_shape(logits_shape)
    if t.shape != expected:
        raise ValueError(f"targets of shape {t.shape} do not fit logits of shape {logits_shape}")
    t = t.reshape(-1)
    num_classes = logits_shape[1] if len(logits_shape) > 1 else logits_shape[0]
    valid = t != ignore_index
    if valid.any() and (t[valid].min() < 0 or t[valid].max() >= num_classes):
        bad = t[valid][(t[valid] < 0) | (t[valid] >= num_classes)][0]
        raise IndexError(f"target class {bad} is out of range for {num_classes} classes")
    return t


def _reduce(losses: np.ndarray, valid: np.ndarray, reduction: str, shape: tuple):
    """Apply the reduction; return (value, per-position scale of the incoming gradient)."""
    if reduction == "none":
        return losses.reshape(shape), None
    if reduction == "sum":
        return np.asarray(losses.sum()), 1.0
    n = int(valid.sum())
    return np.asarray(losses.sum() / max(n, 1)), 1.0 / max(n, 1)


def cross_entropy(
    logits, target, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    t = _check_targets(logits.shape, np.asarray(getattr(target, "data", target)), ignore_index)
    x = _classes_last(logits.data)
    n_rows, n_classes = x.shape
    valid = t != ignore_index
    fused = backends.fused_layers(x.dtype)
    if fused is not None:  # the same loss and gradient from one C++ pass per row each way
        losses, row_grad = fused.cross_entropy_rows(x, t, ignore_index, label_smoothing)
        value, scale = _reduce(losses, valid, reduction, _target_shape(logits.shape))

        def fused_backward(g):
            per_row = (g.reshape(-1) if scale is None else g * scale) * valid
            return (_undo_classes_last(row_grad(per_row), logits.shape),)

        return make_result(value.astype(x.dtype), (logits,), fused_backward, "cross_entropy")
    shifted = x - _row_max(x, -1)
    e = np.exp(shifted)
    sum_e = e.sum(axis=-1, keepdims=True)
    logp = shifted - np.log(sum_e)  # log_softmax, finite for finite logits (no log(0))
    rows = np.arange(n_rows)
    safe_t = np.where(valid, t, 0)
    eps = label_smoothing
    losses = -(1 - eps) * logp[rows, safe_t]
    if eps:
        losses = losses - (eps / n_classes) * logp.sum(axis=-1)
    losses = np.where(valid, losses, 0).astype(x.dtype)
    value, scale = _reduce(losses, valid, reduction, _target_shape(logits.shape))

    def backward(g):
        grad = e / sum_e  # softmax
        grad[rows, safe_t] -= 1 - eps
        if eps:
            grad -= eps / n_classes
        per_row = (g.reshape(-1) if scale is None else g * scale) * valid
        grad *= per_row.reshape(-1, 1)
        return (_undo_classes_last(grad, logits.shape),)

    return make_result(value.astype(x.dtype), (logits,), backward, "cross_entropy")


def nll_loss(log_probs, target, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of the target classes, given log-probabilities (N, C)."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    t = _check_targets(log_probs.shape, np.asarray(getattr(target, "data", target)), ignore_index)
    x = _classes_last(log_probs.data)
    rows = np.arange(x.shape[0])
    valid = t != ignore_index
    safe_t = np.where(valid, t, 0)
    losses = np.where(valid, -x[rows, safe_t], 0).astype(x.dtype)
    value, scale = _reduce(losses, valid, reduction, _target_shape(log_probs.shape))

    def backward(g):
        grad = np.zeros_like(x)
        per_row = (g.reshape(-1) if scale is None else g * scale) * valid
        grad[rows, safe_t] = -per_row
        return (_undo_classes_last(grad, log_probs.shape),)

    return make_result(value.astype(x.dtype), (log_probs,), backward, "nll_loss")


def mse_loss(input, target, reduction: str = "mean"):
    """Mean squared error; d/dinput = 2 (input - target) / n (for the mean)."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    target = as_tensor(target, like=input)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} != target shape {target.shape}")
    diff = input.data - target.data
    if reduction == "none":
        value, scale = diff * diff, None
    elif reduction == "sum":
        value, scale = np.asarray((diff * diff).sum()), 1.0
    else:
        value, scale = np.asarray((diff * diff).mean()), 1.0 / max(diff.size, 1)

    def backward(g):
        gd = 2 * diff * (g if scale is None else g * scale)
        return gd, (-gd if target.requires_grad else None)

    return make_result(value.astype(diff.dtype), (input, target), backward, "mse_loss")
