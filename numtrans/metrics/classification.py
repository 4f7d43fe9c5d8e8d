"""Classification metrics: accuracy, precision / recall / F1 and the confusion matrix.

Every function takes two 1-D label arrays of the same length ``N``: ``y_true`` (the gold
labels) and ``y_pred`` (the model's labels, e.g. ``logits.argmax(-1)``). Labels may be
integers or strings. Results equal scikit-learn's ``sklearn.metrics`` functions of the same
name, including the ``zero_division`` rules, so you can check one against the other.

For one class ``c`` we count, over the N samples::

    tp_c   = #{i : y_true[i] == c and y_pred[i] == c}     (true positives)
    pred_c = #{i : y_pred[i] == c}  = tp_c + fp_c          (predicted as c)
    true_c = #{i : y_true[i] == c}  = tp_c + fn_c          (support: really c)

    precision_c = tp_c / pred_c      "when the model says c, how often is it right?"
    recall_c    = tp_c / true_c      "of the real c's, how many did the model find?"
    F_beta,c    = (1 + b^2) tp_c / ((1 + b^2) tp_c + b^2 fn_c + fp_c)
                = (1 + b^2) tp_c / (b^2 true_c + pred_c)        (F1: b = 1, the harmonic mean)
"""

from __future__ import annotations

import warnings

import numpy as np

AVERAGES = ("binary", "micro", "macro", "weighted", None)


class UndefinedMetricWarning(UserWarning):
    """A score divided by zero (e.g. precision of a class that was never predicted)."""


# ----------------------------------------------------------------------------- input checks
def check_labels(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Validate two label arrays and return them as 1-D NumPy arrays of shape (N,)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of labels, got shape {y.shape}")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
            raise ValueError(f"{name} holds non-integer floats: these look like scores, not labels")
        if y.dtype.kind not in "biufUSO":
            raise TypeError(f"{name} has dtype {y.dtype}; labels must be integers or strings")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred differ in length: {len(y_true)} != {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty: there is nothing to score")
    if (y_true.dtype.kind in "US") != (y_pred.dtype.kind in "US"):
        raise TypeError("mix of string and number labels in y_true and y_pred")
    return y_true, y_pred


def unique_labels(y_true, y_pred) -> np.ndarray:
    """The sorted set of labels seen in either array (scikit-learn's default label order)."""
    return np.unique(np.concatenate([y_true, y_pred]))


def _one_hot(y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N,) labels -> (N, K) int64 indicators; a label outside ``labels`` gives a zero row."""
    return (y[:, None] == labels[None, :]).astype(np.int64)


def _check_label_list(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D list, got shape {labels.shape}")
    if len(np.unique(labels)) != len(labels):
        raise ValueError(f"labels contains duplicates: {labels.tolist()}")
    return labels


# ----------------------------------------------------------------------------- metrics
def accuracy_score(y_true, y_pred, *, normalize: bool = True) -> float:
    """Fraction of exact matches: ``mean(y_true == y_pred)`` (the count if not normalize)."""
    y_true, y_pred = check_labels(y_true, y_pred)
    hits = y_true == y_pred
    return float(hits.mean()) if normalize else int(hits.sum())


def confusion_matrix(y_true, y_pred, *, labels=None) -> np.ndarray:
    """Count matrix ``cm[i, j]`` = #samples whose true label is ``labels[i]`` and predicted
    label is ``labels[j]``; shape (K, K), rows = truth, columns = prediction.

    ``labels`` picks (and orders) the classes; samples with a label outside it are skipped.
    Default: the sorted labels seen in either array. With one-hot matrices ``T`` and ``P``
    of shape (N, K) the whole matrix is one product: ``cm = T.T @ P``.
    """
    y_true, y_pred = check_labels(y_true, y_pred)
    if labels is None:
        labels = unique_labels(y_true, y_pred)
    else:
        labels = _check_label_list(labels)
        if not np.isin(labels, y_true).any():
            raise ValueError("at least one label in `labels` must occur in y_true")
    return _one_hot(y_true, labels).T @ _one_hot(y_pred, labels)


def _zero_division_value(zero_division) -> float:
    if isinstance(zero_division, str) and zero_division == "warn":
        return 0.0
    if isinstance(zero_division, (int, float, np.floating)) and not isinstance(zero_division, bool):
        if np.isnan(zero_division) or zero_division in (0, 1):
            return float(zero_division)
    raise ValueError(f'zero_division must be "warn", 0, 1 or np.nan, got {zero_division!r}')


def _divide(num, den, zero_division, metric: str, warn: bool) -> np.ndarray:
    """``num / den`` elementwise, with ``zero_division``'s value where ``den == 0``."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    zero = den == 0
    out = num / np.where(zero, 1.0, den)
    out[zero] = _zero_division_value(zero_division)
    if zero.any() and warn and isinstance(zero_division, str):
        warnings.warn(
            f"{metric} is ill-defined (0/0) for {int(zero.sum())} class(es) and set to 0.0; "
            "pass zero_division=0, 1 or np.nan to choose the value and silence this warning",
            UndefinedMetricWarning,
            stacklevel=4,
        )
    return out


def _nan_average(values: np.ndarray, weights=None) -> float:
    """Mean (or weighted mean) that skips NaN scores, like scikit-learn's averaging."""
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    values = values[keep]
    if weights is None or np.sum(weights[keep]) == 0:  # all-zero weights: plain mean
        return float(np.mean(values))
    return float(np.average(values, weights=weights[keep]))


def precision_recall_fscore_support(
    y_true,
    y_pred,
    *,
    beta: float = 1.0,
    labels=None,
    pos_label=1,
    average: str | None = None,
    zero_division="warn",
    warn_for=("precision", "recall", "f-score"),
):
    """Precision, recall, F-beta and support, per class or averaged.

    Returns ``(precision, recall, fbeta, support)``: arrays of shape (K,) when
    ``average=None`` (K = ``len(labels)``), else three floats and ``support=None``.

    ``average``:
      * ``None``: one score per class in ``labels`` (default: sorted labels seen).
      * ``"binary"``: only the class ``pos_label``; the data may hold at most 2 labels.
      * ``"micro"``: pool the counts first, ``sum(tp) / sum(pred)`` etc. For single-label
        data covering every class this equals the accuracy.
      * ``"macro"``: plain mean of the per-class scores (every class counts the same).
      * ``"weighted"``: mean weighted by support ``true_c`` (frequent classes count more).

    ``zero_division`` (the value of a 0/0 score, e.g. precision of a class never predicted,
    recall of a class absent from ``y_true``, F of a class in neither):
      * ``"warn"`` (default): use 0.0 and emit an :class:`UndefinedMetricWarning`;
      * ``0`` or ``1``: use that value silently;
      * ``np.nan``: use NaN, and leave those classes out of macro/weighted averages.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    _zero_division_value(zero_division)  # validate early, even if nothing divides by zero
    y_true, y_pred = check_labels(y_true, y_pred)
    present = unique_labels(y_true, y_pred)
    if average == "binary":
        if len(present) > 2:
            raise ValueError(
                f"average='binary' needs at most 2 labels, found {len(present)}: "
                f"{present.tolist()}; use average='macro', 'micro', 'weighted' or None"
            )
        if pos_label not in present.tolist() and len(present) == 2:
            raise ValueError(f"pos_label={pos_label!r} is not one of the labels {present.tolist()}")
        labels = np.asarray([pos_label])
    elif labels is None:
        labels = present
    else:
        labels = _check_label_list(labels)

    tp = (_one_hot(y_true, labels) * _one_hot(y_pred, labels)).sum(axis=0)  # (K,)
    pred = _one_hot(y_pred, labels).sum(axis=0)
    true = _one_hot(y_true, labels).sum(axis=0)
    if average == "micro":
        tp, pred, true = tp.sum(keepdims=True), pred.sum(keepdims=True), true.sum(keepdims=True)

    precision = _divide(tp, pred, zero_division, "precision", "precision" in warn_for)
    recall = _divide(tp, true, zero_division, "recall", "recall" in warn_for)
    if np.isposinf(beta):
        fscore = recall
    elif beta == 0:
        fscore = precision
    else:
        b2 = beta**2
        fscore = _divide(
            (1 + b2) * tp, b2 * true + pred, zero_division, "f-score", "f-score" in warn_for
        )

    if average is None:
        return precision, recall, fscore, true
    weights = true if average == "weighted" else None
    return (
        _nan_average(precision, weights),
        _nan_average(recall, weights),
        _nan_average(fscore, weights),
        None,
    )


def precision_score(
    y_true, y_pred, *, labels=None, pos_label=1, average="binary", zero_division="warn"
):
    """Precision ``tp / (tp + fp)``; see :func:`precision_recall_fscore_support`."""
    p, _, _, _ = precision_recall_fscore_support(
        y_true,
        y_pred,
        labels=labels,
        pos_label=pos_label,
        average=average,
        zero_division=zero_division,
        warn_for=("precision",),
    )
    return p


def recall_score(
    y_true, y_pred, *, labels=None, pos_label=1, average="binary", zero_division="warn"
):
    """Recall ``tp / (tp + fn)``; see :func:`precision_recall_fscore_support`."""
    _, r, _, _ = precision_recall_fscore_support(
        y_true,
        y_pred,
        labels=labels,
        pos_label=pos_label,
        average=average,
        zero_division=zero_division,
        warn_for=("recall",),
    )
    return r


def f1_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary", zero_division="warn"):
    """F1 ``2 tp / (2 tp + fp + fn)``, the harmonic mean of precision and recall.

    See :func:`precision_recall_fscore_support` for ``average`` and ``zero_division``.
    """
    _, _, f, _ = precision_recall_fscore_support(
        y_true,
        y_pred,
        labels=labels,
        pos_label=pos_label,
        average=average,
        zero_division=zero_division,
        warn_for=("f-score",),
    )
    return f
