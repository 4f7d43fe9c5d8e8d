"""SQuAD's exact-match and F1, equal to the official v1.1 evaluation script.

Both scores compare a predicted answer string with each reference answer after the same
*normalisation* and keep the best reference (annotators phrase an answer differently, and a
prediction matching any of them is right):

1. lower-case;
2. delete every ASCII punctuation character (``string.punctuation``);
3. delete the whole words ``a``, ``an``, ``the``;
4. collapse runs of whitespace into single spaces (and strip the ends).

For example ``"The  Denver Broncos!"`` normalises to ``"denver broncos"``.

* **Exact match** is 1 when the normalised strings are equal, else 0.
* **F1** treats the two normalised answers as bags of words. With ``common`` the size of the
  multiset intersection, ``precision = common / len(pred)``, ``recall = common / len(ref)`` and
  ``F1 = 2 P R / (P + R)``; no shared word gives 0.

The corpus score is the mean over questions of the per-question maximum, times 100.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    # The articles go after punctuation so "the," is caught; the regex leaves a space behind,
    # which the whitespace collapse below removes.
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, reference: str) -> float:
    """1.0 if the two answers are equal after :func:`normalize_answer`, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1_score(prediction: str, reference: str) -> float:
    """Bag-of-words F1 between two normalised answers, in [0, 1]."""
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def _as_pairs(predictions, references) -> list[tuple[str, list[str]]]:
    """Accept parallel lists, or dicts keyed by question id (the official format)."""
    if isinstance(predictions, Mapping):
        if not isinstance(references, Mapping):
            raise ValueError("squad_scores: predictions is a dict, so references must be one too")
        missing = [qid for qid in references if qid not in predictions]
        if missing:
            raise ValueError(f"squad_scores: no prediction for question id {missing[0]!r}")
        pairs = [(predictions[qid], references[qid]) for qid in references]
    else:
        if len(predictions) != len(references):
            raise ValueError(
                f"squad_scores: {len(predictions)} predictions but {len(references)} references"
            )
        pairs = list(zip(predictions, references))
    out = []
    for pred, refs in pairs:
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise ValueError("squad_scores: a question has no reference answer")
        if not isinstance(pred, str):
            raise ValueError(
                f"squad_scores: a prediction must be a string, got {type(pred).__name__}"
            )
        out.append((pred, refs))
    return out


def squad_scores(
    predictions: Sequence[str] | Mapping[str, str],
    references: Sequence[Sequence[str] | str] | Mapping[str, Sequence[str]],
) -> dict[str, float]:
    """Corpus exact match and F1 in percent, each the mean of the per-question max over references.

    ``predictions``: one answer string per question; ``references``: for each question a list of
    gold answers (or a single string). Both may instead be dicts keyed by question id, as the
    official script reads them; then every reference id needs a prediction.

    >>> squad_scores(["the Broncos"], [["Denver Broncos", "Broncos"]])
    {'exact_match': 100.0, 'f1': 100.0}
    """
    pairs = _as_pairs(predictions, references)
    if not pairs:
        raise ValueError("squad_scores: no questions to score")
    em = sum(max(exact_match_score(p, r) for r in refs) for p, refs in pairs)
    f1 = sum(max(f1_score(p, r) for r in refs) for p, refs in pairs)
    n = len(pairs)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}
