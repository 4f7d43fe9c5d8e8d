"""Start/end logits of every window -> one answer string per question.

For each window, the ``n_best`` highest start logits and the ``n_best`` highest end logits give
candidate spans (s, e). A candidate is kept when both ends are context tokens (their offset is
not ``None``), ``s <= e`` and it has at most ``max_answer_length`` tokens; its score is

    score(s, e) = start_logits[s] + end_logits[e]          (a log-probability up to constants)

The answer is the best candidate over *all* windows of the question, and its text is the exact
context slice ``context[offsets[s][0]:offsets[e][1]]``.

SQuAD 2.0 ("no answer"): the [CLS] token (index 0) scores the null answer,
``null = start_logits[0] + end_logits[0]``, taking the lowest over the windows (the window most
confident that it holds an answer). The prediction is "" when ``null - best > threshold``
(``threshold`` tuned on held-out data; larger = answer more often).
"""

from __future__ import annotations

import numpy as np


def best_spans(start_logits, end_logits, offsets, n_best: int = 20, max_answer_length: int = 30):
    """Valid ``(score, s, e)`` candidates of one window, best first."""
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    if start_logits.shape != end_logits.shape or start_logits.ndim != 1:
        raise ValueError(
            f"start and end logits must be two (T,) arrays, got {start_logits.shape} "
            f"and {end_logits.shape}"
        )
    if max_answer_length < 1 or n_best < 1:
        raise ValueError("n_best and max_answer_length must be at least 1")
    T = min(len(offsets), len(start_logits))
    starts = np.argsort(start_logits[:T])[::-1][:n_best]
    ends = np.argsort(end_logits[:T])[::-1][:n_best]
    out = []
    for s in starts:
        for e in ends:
            if offsets[s] is None or offsets[e] is None:
                continue  # a question or special token
            if e < s or e - s + 1 > max_answer_length:
                continue
            out.append((float(start_logits[s] + end_logits[e]), int(s), int(e)))
    out.sort(key=lambda c: -c[0])
    return out


def postprocess_predictions(
    examples,
    features: dict,
    start_logits,
    end_logits,
    n_best: int = 20,
    max_answer_length: int = 30,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> dict[str, dict]:
    """``{example id: {"answer", "score", "start", "end"}}`` (character offsets in the context).

    ``start_logits``/``end_logits``: (F, T), one row per feature of ``features``
    (``prepare_features``). With ``version_2_with_negative`` an example may get the null answer
    ``{"answer": "", "score": null, "start": None, "end": None}``."""
    start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
    owner = np.asarray(features["example_index"])
    if start_logits.shape[0] != len(owner) or end_logits.shape[0] != len(owner):
        raise ValueError(f"{len(owner)} features but {start_logits.shape[0]} rows of logits")
    best = {k: None for k in range(len(examples))}
    null = {k: np.inf for k in range(len(examples))}
    for i, k in enumerate(owner):
        k = int(k)
        null[k] = min(null[k], float(start_logits[i, 0] + end_logits[i, 0]))
        spans = best_spans(
            start_logits[i], end_logits[i], features["offset_mapping"][i], n_best,
            max_answer_length,
        )  # fmt: skip
        if spans and (best[k] is None or spans[0][0] > best[k][0]):
            score, s, e = spans[0]
            offsets = features["offset_mapping"][i]
            best[k] = (score, offsets[s][0], offsets[e][1])
    out = {}
    for k, ex in enumerate(examples):
        b = best[k]
        no_span = b is None
        if version_2_with_negative and (no_span or null[k] - b[0] > null_score_diff_threshold):
            out[ex.id] = {"answer": "", "score": null[k], "start": None, "end": None}
        elif no_span:  # v1.1 always answers; no valid span at all (e.g. max_answer_length)
            out[ex.id] = {"answer": "", "score": float("-inf"), "start": None, "end": None}
        else:
            score, a, z = b
            out[ex.id] = {"answer": ex.context[a:z], "score": score, "start": a, "end": z}
    return out
