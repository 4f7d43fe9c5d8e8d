"""chrF (Popović, 2015): an F-score over character n-grams, equal to sacrebleu's ``CHRF()``.

For n = 1..6, with whitespace removed and ``H_n``, ``R_n`` the multisets of character n-grams of
the hypothesis and the reference:

    P_n = |H_n & R_n| / |H_n|        R_n' = |H_n & R_n| / |R_n|        (& keeps the min count)
    P, R = means of P_n and R_n' over the orders where both sides have n-grams
    chrF = 100 * (1 + beta^2) P R / (beta^2 P + R)                    beta = 2: recall counts 4x

Characters, not words, so it needs no word segmentation (it scores Chinese as it is) and gives
partial credit to a near-miss: a sentence-level score smooth enough to rank two translations.
"""

from __future__ import annotations

from collections import Counter


def _char_ngrams(text: str, n: int) -> Counter:
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def chrf_stats(hypothesis: str, reference: str, char_order: int = 6) -> list[tuple[int, int, int]]:
    """(hyp n-grams, ref n-grams, matches) for each order n = 1..char_order."""
    hyp, ref = "".join(hypothesis.split()), "".join(reference.split())
    out = []
    for n in range(1, char_order + 1):
        h, r = _char_ngrams(hyp, n), _char_ngrams(ref, n)
        out.append((sum(h.values()), sum(r.values()), sum((h & r).values())))
    return out


def sentence_chrf(hypothesis: str, references, char_order: int = 6, beta: float = 2.0) -> float:
    """chrF in [0, 100] of one hypothesis against a reference (or the best of several)."""
    if isinstance(references, str):
        references = [references]
    if not references:
        raise ValueError("sentence_chrf needs at least one reference")
    return max(_f_score(chrf_stats(hypothesis, r, char_order), beta) for r in references)


def _f_score(stats, beta: float) -> float:
    precisions, recalls = [], []
    for n_hyp, n_ref, n_match in stats:
        if n_hyp > 0 and n_ref > 0:  # an order the sentences are too short for does not count
            precisions.append(n_match / n_hyp)
            recalls.append(n_match / n_ref)
    if not precisions:
        return 0.0
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    if p + r == 0:
        return 0.0
    b2 = beta * beta
    return 100.0 * (1 + b2) * p * r / (b2 * p + r)
