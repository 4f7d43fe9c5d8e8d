"""Regression metrics: mean squared error, mean absolute error and Pearson's r.

Inputs are arrays of the same shape: (N,) for one output or (N, D) for D outputs (the
errors are then averaged over all N * D entries, which equals scikit-learn's default
``multioutput="uniform_average"``).
"""

from __future__ import annotations

import warnings

import numpy as np


def _check_pair(y_true, y_pred, name_a="y_true", name_b="y_pred") -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} differ in shape: {a.shape} != {b.shape}")
    if a.ndim not in (1, 2):
        raise ValueError(f"{name_a} must have shape (N,) or (N, D), got {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name_a} and {name_b} are empty: there is nothing to score")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError(f"{name_a} or {name_b} holds NaN or infinity")
    return a, b


def mse(y_true, y_pred) -> float:
    """Mean squared error ``(1/N) sum_i (y_i - yhat_i)^2`` (equals sklearn's mean_squared_error)."""
    a, b = _check_pair(y_true, y_pred)
    return float(np.mean((a - b) ** 2, axis=0).mean())


def mae(y_true, y_pred) -> float:
    """Mean absolute error ``(1/N) sum_i |y_i - yhat_i|`` (equals sklearn's mean_absolute_error)."""
    a, b = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b), axis=0).mean())


def pearson(x, y) -> float:
    """Pearson correlation coefficient r between two (N,) samples, in [-1, 1].

    r = sum_i (x_i - mean x)(y_i - mean y) / sqrt(sum_i (x_i - mean x)^2 * sum_i (y_i - mean y)^2)

    i.e. the cosine of the angle between the centred vectors: +1 for a perfect increasing
    straight line, -1 for a decreasing one, 0 for no linear relation. Equals
    ``scipy.stats.pearsonr(x, y).statistic``. A constant input has no defined r: the result
    is NaN with a RuntimeWarning (as scipy does).
    """
    a, b = _check_pair(x, y, "x", "y")
    if a.ndim != 1:
        raise ValueError(f"pearson takes two 1-D samples, got shape {a.shape}")
    if len(a) < 2:
        raise ValueError(f"pearson needs at least 2 pairs, got {len(a)}")
    da, db = a - a.mean(), b - b.mean()
    norm_a, norm_b = np.linalg.norm(da), np.linalg.norm(db)
    if norm_a == 0 or norm_b == 0:
        warnings.warn(
            "pearson: an input is constant, so r is undefined (NaN)", RuntimeWarning, stacklevel=2
        )
        return float("nan")
    # Normalise before the dot product so huge or tiny values cannot overflow/underflow.
    r = np.dot(da / norm_a, db / norm_b)
    return float(np.clip(r, -1.0, 1.0))  # rounding can push |r| a hair above 1


mean_squared_error = mse
mean_absolute_error = mae
