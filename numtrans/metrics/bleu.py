"""BLEU, the standard machine-translation score, equal to sacrebleu 2.x.

BLEU compares a system's translations (hypotheses) with human references by counting
shared word n-grams, n = 1..4, over the whole corpus:

1. **Modified n-gram precision.** ``p_n = matched_n / total_n``, where ``total_n`` counts
   the n-grams of all hypotheses and ``matched_n`` counts those also found in the
   reference, each n-gram *clipped* to the number of times the reference has it (so "the
   the the the" cannot score by repeating a common word). With several references, the
   clip is the largest count in any one reference.
2. **Brevity penalty.** Precision alone rewards short, safe output, so with c = total
   hypothesis length and r = total reference length (per sentence, the reference length
   closest to the hypothesis; the shorter one on a tie)::

       BP = 1 if c >= r else exp(1 - r / c)

3. **Geometric mean.** ``BLEU = BP * exp((1/4) * sum_n ln p_n)``, reported times 100.

Worked example (one sentence, 13a tokens)::

    hypothesis: "the cat sat on the mat"     (c = 6)
    reference:  "the cat is on the mat"      (r = 6, so BP = 1)
    1-grams: the, cat, sat, on, the, mat -> all but "sat" matched    p1 = 5/6
    2-grams: the cat, cat sat, sat on, on the, the mat  -> 3 matched   p2 = 3/5
    3-grams: the cat sat, cat sat on, sat on the, on the mat -> 1      p3 = 1/4
    4-grams: the cat sat on, cat sat on the, sat on the mat -> 0       p4 = 0/3
    p4 = 0 would zero the geometric mean; "exp" smoothing uses 1/(2 * 3) instead:
    BLEU = 100 * (5/6 * 3/5 * 1/4 * 1/6) ** (1/4) = 37.99

Smoothing (``smooth``) for orders with no match (Chen & Cherry, 2014):
``"exp"`` (default): the k-th order with zero matches gets ``1 / (2^k * total_n)``;
``"floor"``: zero matches count as ``smooth_value`` (0.1); ``"add-k"``: add ``smooth_value``
(1) to matched and total for n >= 2; ``"none"``: a zero precision gives BLEU = 0.
A corpus with no matched n-gram at all scores 0 whatever the smoothing.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from .bleu_tokenize import get_tokenizer

SMOOTH_DEFAULTS = {"exp": None, "none": None, "floor": 0.1, "add-k": 1}
MAX_ORDER = 4


@dataclass(frozen=True)
class BLEUScore:
    """BLEU and its parts. ``precisions`` and ``score`` are percentages (0..100)."""

    score: float
    precisions: list[float]  # smoothed p_n * 100, n = 1..max_order
    counts: list[float]  # matched n-grams (after add-k smoothing, if used)
    totals: list[float]  # hypothesis n-grams (after add-k smoothing, if used)
    bp: float  # brevity penalty
    ratio: float  # sys_len / ref_len
    sys_len: int  # total hypothesis tokens c
    ref_len: int  # total (closest) reference tokens r

    def __str__(self) -> str:
        prec = "/".join(f"{p:.1f}" for p in self.precisions)
        return (
            f"BLEU = {self.score:.2f} {prec} (BP = {self.bp:.3f} ratio = {self.ratio:.3f} "
            f"hyp_len = {self.sys_len} ref_len = {self.ref_len})"
        )


def _ngrams(tokens: list[str], max_order: int) -> Counter:
    """Counts of every n-gram (as a tuple), n = 1..max_order."""
    return Counter(
        tuple(tokens[i : i + n])
        for n in range(1, max_order + 1)
        for i in range(len(tokens) - n + 1)
    )


def _sentence_stats(hyp: list[str], refs: list[list[str]], max_order: int) -> list[int]:
    """``[c, r, matched_1..matched_N, total_1..total_N]`` for one hypothesis."""
    # Clip counts: the most times any single reference uses each n-gram.
    ref_counts: Counter = Counter()
    for ref in refs:
        ref_counts |= _ngrams(ref, max_order)  # | keeps the max count per key
    # Reference length: the one closest to the hypothesis length, the shorter on a tie.
    ref_len = min((len(r) for r in refs), key=lambda n: (abs(n - len(hyp)), n))
    matched, total = [0] * max_order, [0] * max_order
    for gram, count in _ngrams(hyp, max_order).items():
        total[len(gram) - 1] += count
        matched[len(gram) - 1] += min(count, ref_counts[gram])
    return [len(hyp), ref_len, *matched, *total]


def bleu_from_stats(
    sys_len: int,
    ref_len: int,
    matched: list[float],
    total: list[float],
    smooth: str = "exp",
    smooth_value: float | None = None,
    effective_order: bool = False,
) -> BLEUScore:
    """BLEU from corpus totals (the sums of :func:`_sentence_stats` over sentences).

    ``effective_order=True`` averages only the orders n that have hypothesis n-grams
    (sentence-level BLEU uses it, so a 3-word sentence is not scored on 4-grams).
    """
    if smooth not in SMOOTH_DEFAULTS:
        raise ValueError(f"unknown smooth={smooth!r}; choose one of {tuple(SMOOTH_DEFAULTS)}")
    if smooth_value is None:
        smooth_value = SMOOTH_DEFAULTS[smooth]
    if len(matched) != len(total) or not matched:
        raise ValueError(f"matched and total need one count per order, got {matched} and {total}")
    matched, total = list(matched), list(total)
    max_order = len(matched)
    bp = 1.0 if sys_len >= ref_len else (math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0)
    ratio = sys_len / ref_len if ref_len else 0.0
    precisions = [0.0] * max_order
    if not any(matched):  # nothing matched at all: 0, whatever the smoothing
        return BLEUScore(0.0, precisions, matched, total, bp, ratio, sys_len, ref_len)

    zero_orders = 0  # how many orders so far had no match (for "exp" smoothing)
    order = max_order  # how many orders enter the geometric mean
    for n in range(max_order):
        if smooth == "add-k" and n > 0:
            matched[n] += smooth_value
            total[n] += smooth_value
        if total[n] == 0:  # no n-grams of this length at all (hypotheses too short)
            break
        if effective_order:
            order = n + 1
        if matched[n] > 0:
            precisions[n] = 100.0 * matched[n] / total[n]
        elif smooth == "exp":
            zero_orders += 1
            precisions[n] = 100.0 / (2**zero_orders * total[n])
        elif smooth == "floor":
            precisions[n] = 100.0 * smooth_value / total[n]
        # "none" (and add-k, which cannot reach here for n > 0) leaves p_n = 0
    used = precisions[:order]
    if 0.0 in used:  # ln 0 = -inf: the geometric mean is 0
        score = 0.0
    else:
        score = bp * math.exp(sum(math.log(p) for p in used) / order)
    return BLEUScore(score, precisions, matched, total, bp, ratio, sys_len, ref_len)


def _reference_streams(references, n_hyp: int) -> list[list]:
    """Accept one reference per hypothesis (list[str]) or sacrebleu-style streams."""
    if isinstance(references, str) or not isinstance(references, (list, tuple)) or not references:
        raise TypeError("references must be a non-empty list of strings or of lists of strings")
    if all(isinstance(r, str) for r in references):
        references = [references]  # one stream
    for k, stream in enumerate(references):
        if isinstance(stream, str) or not isinstance(stream, (list, tuple)):
            raise TypeError(
                f"references[{k}] must be a list of strings, got {type(stream).__name__}"
            )
        if len(stream) != n_hyp:
            raise ValueError(
                f"references[{k}] has {len(stream)} sentences but there are {n_hyp} hypotheses; "
                "multiple references are given as streams: references[k][i] is the k-th "
                "reference of hypothesis i (as in sacrebleu)"
            )
    return references


def corpus_bleu(
    hypotheses: list[str],
    references: list[str] | list[list[str]],
    tokenize: str = "13a",
    smooth: str = "exp",
    lowercase: bool = False,
    *,
    smooth_value: float | None = None,
    effective_order: bool = False,
    max_order: int = MAX_ORDER,
) -> BLEUScore:
    """Corpus BLEU of ``hypotheses`` against ``references``; equals ``sacrebleu.corpus_bleu``.

    Args:
        hypotheses: N system outputs, one detokenized sentence each.
        references: either N strings (one reference per hypothesis) or a list of K
            reference *streams* of N strings each, ``references[k][i]`` being the k-th
            reference of hypothesis i (sacrebleu's layout). A ``None`` entry in a stream
            means "no k-th reference for this sentence".
        tokenize: ``"13a"`` (default), ``"zh"`` (Chinese targets), ``"char"`` or ``"none"``.
        smooth: ``"exp"`` (default), ``"none"``, ``"floor"`` or ``"add-k"``.
        lowercase: compare case-insensitively.
        smooth_value: the value for ``"floor"`` (default 0.1) and ``"add-k"`` (default 1).
        effective_order: average only the n-gram orders that occur (see ``bleu_from_stats``).
        max_order: the largest n (4 in standard BLEU).

    Returns:
        A :class:`BLEUScore`; ``str(result)`` prints it the way sacrebleu does.
    """
    if isinstance(hypotheses, str) or not isinstance(hypotheses, (list, tuple)):
        raise TypeError("hypotheses must be a list of strings (one per sentence)")
    if not hypotheses:
        raise ValueError("hypotheses is empty: there is nothing to score")
    if not all(isinstance(h, str) for h in hypotheses):
        raise TypeError("every hypothesis must be a string")
    if not (isinstance(max_order, int) and max_order >= 1):
        raise ValueError(f"max_order must be a positive int, got {max_order!r}")
    streams = _reference_streams(references, len(hypotheses))
    tokenizer = get_tokenizer(tokenize)

    def tokens(line: str) -> list[str]:
        # sacrebleu: lowercase, strip trailing whitespace, tokenize, split on whitespace
        return tokenizer((line.lower() if lowercase else line).rstrip()).split()

    corpus = [0] * (2 + 2 * max_order)
    for i, hyp in enumerate(hypotheses):
        refs = [stream[i] for stream in streams if stream[i] is not None]
        if not refs:
            raise ValueError(f"hypothesis {i} has no reference (every stream holds None)")
        if not all(isinstance(r, str) for r in refs):
            raise TypeError(f"the references of hypothesis {i} must be strings")
        stats = _sentence_stats(tokens(hyp), [tokens(r) for r in refs], max_order)
        corpus = [a + b for a, b in zip(corpus, stats)]
    return bleu_from_stats(
        corpus[0],
        corpus[1],
        corpus[2 : 2 + max_order],
        corpus[2 + max_order :],
        smooth=smooth,
        smooth_value=smooth_value,
        effective_order=effective_order,
    )


def sentence_bleu(
    hypothesis: str,
    references: str | list[str],
    tokenize: str = "13a",
    smooth: str = "exp",
    lowercase: bool = False,
    *,
    smooth_value: float | None = None,
    effective_order: bool = True,
) -> BLEUScore:
    """BLEU of one sentence against one or more references; equals ``sacrebleu.sentence_bleu``.

    BLEU is meant for corpora; per sentence it is noisy, which is why smoothing and
    ``effective_order=True`` (the default here, as in sacrebleu) matter.
    """
    if not isinstance(hypothesis, str):
        raise TypeError("hypothesis must be a single string; use corpus_bleu for lists")
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("sentence_bleu needs at least one reference")
    return corpus_bleu(
        [hypothesis],
        [[r] for r in refs],
        tokenize,
        smooth,
        lowercase,
        smooth_value=smooth_value,
        effective_order=effective_order,
    )
