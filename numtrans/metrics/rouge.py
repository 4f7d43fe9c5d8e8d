"""ROUGE-N and ROUGE-L F-measures for summarisation, equal to Google's ``rouge-score`` package.

ROUGE compares a system summary (prediction) with a human one (reference) by shared units:

* **ROUGE-N** counts n-grams: ``overlap = sum_g min(count_pred(g), count_ref(g))``,
  ``P = overlap / #pred n-grams``, ``R = overlap / #ref n-grams``.
* **ROUGE-L** uses the longest common subsequence (LCS, in order, gaps allowed) of the two
  token lists: ``P = LCS / len(pred)``, ``R = LCS / len(ref)``.
* Both report ``F = 2 P R / (P + R)`` (0 when ``P + R = 0``).

Worked example (word tokens)::

    prediction: "the cat was found under the bed"   (7 tokens)
    reference:  "the cat was under the bed"         (6 tokens)
    ROUGE-1: overlap 6 -> P = 6/7, R = 6/6, F = 0.923
    ROUGE-2: bigrams shared: "the cat", "cat was", "under the", "the bed" -> P = 4/6, R = 4/5
    ROUGE-L: LCS = "the cat was under the bed" = 6 -> same as ROUGE-1 here

Tokenisation, word mode (``rouge-score``'s default, no stemming): lower-case, replace every run
of characters outside ``[a-z0-9]`` by a space, split. Note that this drops all non-ASCII text, so
Chinese needs ``tokenize="char"``: every non-space character is one token (how the CLUE / CSL
title-generation benchmarks score).

With several references per prediction the best one (largest F) counts, as in
``RougeScorer.score_multi``. :func:`rouge` returns the mean F over all pairs (in [0, 1]).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_NGRAM = re.compile(r"^rouge([1-9])$")


def word_tokenize(text: str) -> list[str]:
    """``rouge-score``'s tokeniser without a stemmer: lower case, ASCII alphanumeric runs."""
    return _NON_ALNUM.sub(" ", text.lower()).split()


def char_tokenize(text: str) -> list[str]:
    """One token per non-whitespace character (lower-cased), for Chinese and other unspaced text."""
    return [ch for ch in text.lower() if not ch.isspace()]


_TOKENIZERS = {"word": word_tokenize, "char": char_tokenize}


def _fmeasure(overlap: int, n_pred: int, n_ref: int) -> float:
    precision = overlap / max(n_pred, 1)
    recall = overlap / max(n_ref, 1)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(pred_tokens: list[str], ref_tokens: list[str], n: int) -> float:
    """ROUGE-N F-measure of two token lists."""
    pred, ref = _ngrams(pred_tokens, n), _ngrams(ref_tokens, n)
    overlap = sum((pred & ref).values())
    return _fmeasure(overlap, sum(pred.values()), sum(ref.values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, O(len(a) len(b)) time, O(len(b)) memory.

    ``row[j]`` holds LCS(a[:i], b[:j]) for the current i; one row suffices because cell (i, j)
    only reads (i-1, j-1), (i-1, j) and (i, j-1).
    """
    row = [0] * (len(b) + 1)
    for x in a:
        diag = 0  # LCS(a[:i-1], b[:j-1])
        for j, y in enumerate(b, start=1):
            up = row[j]
            row[j] = diag + 1 if x == y else max(up, row[j - 1])
            diag = up
    return row[-1]


def rouge_l(pred_tokens: list[str], ref_tokens: list[str]) -> float:
    """Sentence-level ROUGE-L F-measure (``rougeL``, not the summary-level ``rougeLsum``)."""
    if not pred_tokens or not ref_tokens:
        return 0.0
    return _fmeasure(lcs_length(ref_tokens, pred_tokens), len(pred_tokens), len(ref_tokens))


def _score_one(pred: list[str], ref: list[str], rouge_type: str) -> float:
    if rouge_type == "rougeL":
        return rouge_l(pred, ref)
    return rouge_n(pred, ref, int(_NGRAM.match(rouge_type).group(1)))


def rouge(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    rouge_types: Sequence[str] = ("rouge1", "rouge2", "rougeL"),
    tokenize: str = "word",
    aggregate: bool = True,
) -> dict[str, float] | list[dict[str, float]]:
    """ROUGE F-measures of ``predictions`` against ``references`` (one string or a list each).

    Returns ``{rouge_type: mean F over pairs}`` or, with ``aggregate=False``, one such dict per
    pair. ``tokenize`` is ``"word"`` (``rouge-score``'s default) or ``"char"`` (Chinese).
    """
    if tokenize not in _TOKENIZERS:
        raise ValueError(f"rouge: tokenize must be 'word' or 'char', got {tokenize!r}")
    for rouge_type in rouge_types:
        if rouge_type != "rougeL" and not _NGRAM.match(rouge_type):
            raise ValueError(f"rouge: unknown rouge type {rouge_type!r} (rouge1..rouge9, rougeL)")
    if isinstance(predictions, str) or isinstance(references, str):
        raise ValueError("rouge: predictions and references must be lists of strings")
    if len(predictions) != len(references):
        raise ValueError(f"rouge: {len(predictions)} predictions but {len(references)} references")
    if aggregate and not predictions:
        raise ValueError("rouge: no predictions to score")
    tok = _TOKENIZERS[tokenize]
    per_pair = []
    for pred, refs in zip(predictions, references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise ValueError("rouge: a prediction has no reference")
        pred_tokens = tok(pred)
        ref_tokens = [tok(r) for r in refs]
        per_pair.append(
            {t: max(_score_one(pred_tokens, r, t) for r in ref_tokens) for t in rouge_types}
        )
    if not aggregate:
        return per_pair
    return {t: sum(s[t] for s in per_pair) / len(per_pair) for t in rouge_types}
