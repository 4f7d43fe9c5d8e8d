"""A per-class summary table of precision, recall, F1 and support (like scikit-learn's)."""

from __future__ import annotations

import numpy as np

from .classification import (
    _check_label_list,
    check_labels,
    precision_recall_fscore_support,
    unique_labels,
)

HEADERS = ("precision", "recall", "f1-score", "support")


def classification_report(
    y_true,
    y_pred,
    *,
    labels=None,
    target_names=None,
    digits: int = 2,
    output_dict: bool = False,
    zero_division="warn",
):
    """Per-class precision / recall / F1 / support plus the micro, macro and weighted means.

    Returns a text table (``output_dict=False``) or a dict of the same numbers::

                      precision    recall  f1-score   support

                   0       1.00      1.00      1.00         1
                   1       1.00      0.50      0.67         2
                   2       0.67      1.00      0.80         2

            accuracy                           0.80         5
           macro avg       0.89      0.83      0.82         5
        weighted avg       0.87      0.80      0.79         5

    The dict maps each class name to ``{"precision", "recall", "f1-score", "support"}`` and
    adds ``"macro avg"`` and ``"weighted avg"``. The micro average is reported as
    ``"accuracy"`` (a single float in the dict) when ``labels`` covers every label in the
    data, because it then equals the accuracy; otherwise as ``"micro avg"``.
    Text and dict equal ``sklearn.metrics.classification_report`` (except that sklearn
    prints the support as "1.0" instead of "1" when no sample at all is predicted right).

    Args:
        labels: classes to report, in order (default: sorted labels seen in either array).
        target_names: display names, one per entry of ``labels``.
        digits: decimals in the text table.
        zero_division: value for 0/0 scores, see ``precision_recall_fscore_support``.
    """
    y_true, y_pred = check_labels(y_true, y_pred)
    present = unique_labels(y_true, y_pred)
    if labels is None:
        labels = present
        micro_is_accuracy = True
    else:
        labels = _check_label_list(labels)
        micro_is_accuracy = set(labels.tolist()) >= set(present.tolist())
    if target_names is None:
        target_names = [str(label) for label in labels]
    elif len(target_names) != len(labels):
        raise ValueError(
            f"target_names has {len(target_names)} names for {len(labels)} classes; "
            "pass one name per class (use `labels` to choose the classes)"
        )

    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=zero_division
    )
    rows = {name: (p[i], r[i], f[i], s[i]) for i, name in enumerate(target_names)}
    averages = {}
    for average in ("micro", "macro", "weighted"):
        heading = "accuracy" if average == "micro" and micro_is_accuracy else f"{average} avg"
        ap, ar, af, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=zero_division
        )
        averages[heading] = (ap, ar, af, np.sum(s))

    if output_dict:
        report = {name: dict(zip(HEADERS, map(float, row))) for name, row in rows.items()}
        for heading, row in averages.items():
            report[heading] = (
                float(row[0]) if heading == "accuracy" else dict(zip(HEADERS, map(float, row)))
            )
        return report
    return _format_table(rows, averages, digits)


def _format_table(rows: dict, averages: dict, digits: int) -> str:
    """Right-aligned columns 9 characters wide; the name column fits the longest name."""
    width = max(max(len(name) for name in rows), len("weighted avg"), digits)
    line = "{:>{w}s} " + " {:>9.{d}f}" * 3 + " {:>9}\n"
    text = "{:>{w}s} ".format("", w=width) + "".join(f" {h:>9}" for h in HEADERS) + "\n\n"
    for name, row in rows.items():
        text += line.format(name, *row, w=width, d=digits)
    text += "\n"
    for heading, (ap, ar, af, support) in averages.items():
        if heading == "accuracy":  # accuracy has no precision/recall columns
            text += "{:>{w}s} ".format(heading, w=width) + " " * 20
            text += " {:>9.{d}f} {:>9}\n".format(af, support, d=digits)
        else:
            text += line.format(heading, ap, ar, af, support, w=width, d=digits)
    return text
