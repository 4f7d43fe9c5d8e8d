"""Repetition control: changing the next-token logits from the tokens already generated.

Both functions take the logits z (B, V) for the next position and the history ``input_ids``
(B, T) of each row (the prompt and what was generated so far; for an encoder-decoder the decoder
input, ``<bos>`` included), and return new (B, V) logits. They mirror Hugging Face's
``NoRepeatNGramLogitsProcessor`` and ``RepetitionPenaltyLogitsProcessor`` (tested against them).

* **No repeated n-gram** (``no_repeat_ngram_size = n``): a token that would complete an n-gram
  already present in the row gets -inf. With history y_1..y_T the banned tokens are

      { y_{i+n-1} : (y_i, ..., y_{i+n-2}) == (y_{T-n+2}, ..., y_T) }

  i.e. every token that once followed the row's last n-1 tokens. ``n = 1`` bans every token seen
  so far; ``n = 0`` is off. It makes a loop such as 看看看看 impossible: the bigram (看, 看) may
  appear once.
* **Repetition penalty** (Keskar et al., 2019, "CTRL", section 4.1), ``p``: for every token v
  already in the row, z_v <- z_v / p if z_v > 0 else z_v * p (the token becomes less likely
  for p > 1, whatever the sign of its logit); other tokens keep their logit. ``p = 1`` is off.

Where they act: before temperature / top-k / top-p in sampling (as Hugging Face's logits
processors run before its warpers), and in greedy and beam search on the raw logits before the
log-softmax, so each beam hypothesis is judged on its own history.
"""

from __future__ import annotations

import math

import numpy as np


def check_no_repeat_ngram_size(n) -> int:
    """``n`` as an int >= 0 (0 = off); a one-line ValueError otherwise."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"no_repeat_ngram_size must be an integer >= 0, got {n!r}")
    return int(n)


def check_repetition_penalty(p) -> float:
    """``p`` as a finite float > 0 (1.0 = off); a one-line ValueError otherwise."""
    ok = isinstance(p, (int, float, np.floating)) and not isinstance(p, bool)
    if not ok or not math.isfinite(p) or p <= 0:
        raise ValueError(f"repetition_penalty must be a finite number > 0, got {p!r}")
    return float(p)


def ban_repeated_ngrams(logits: np.ndarray, input_ids: np.ndarray, n: int) -> np.ndarray:
    """Logits (B, V) with every token that would repeat an n-gram of ``input_ids`` (B, T) set to
    -inf (a new array; the input is not changed). ``n = 0``, or a history shorter than ``n``
    tokens (no n-gram in it yet), changes nothing."""
    n = check_no_repeat_ngram_size(n)
    input_ids = np.asarray(input_ids)
    T = input_ids.shape[1]
    out = np.array(logits, copy=True)
    if n == 0 or T < n:
        return out
    # all windows of n tokens, (B, T - n + 1, n): the first n-1 are the "prefix"
    grams = np.lib.stride_tricks.sliding_window_view(input_ids, n, axis=1)
    last = input_ids[:, T - n + 1 :]  # (B, n - 1): what the next token would follow
    for b in range(input_ids.shape[0]):
        same = np.all(grams[b, :, :-1] == last[b], axis=1)  # windows whose prefix matches
        out[b, grams[b, same, -1]] = -np.inf
    return out


def penalize_repetition(logits: np.ndarray, input_ids: np.ndarray, penalty: float) -> np.ndarray:
    """Logits (B, V) with tokens present in ``input_ids`` (B, T) penalised as CTRL does:
    z / penalty where z > 0, z * penalty elsewhere (a new array). A token that occurs several
    times is penalised once."""
    penalty = check_repetition_penalty(penalty)
    out = np.array(logits, copy=True)
    if penalty == 1.0:
        return out
    input_ids = np.asarray(input_ids)
    seen = np.zeros(out.shape, dtype=bool)
    seen[np.arange(out.shape[0])[:, None], input_ids] = True
    penalised = np.where(out > 0, out / penalty, out * penalty)
    return np.where(seen, penalised, out)


def apply_repetition_controls(
    logits: np.ndarray,
    input_ids: np.ndarray,
    no_repeat_ngram_size: int = 0,
    repetition_penalty: float = 1.0,
) -> np.ndarray:
    """Both controls in Hugging Face's order (penalty, then the n-gram ban); a no-op when both
    are off (the logits are returned as they are)."""
    if repetition_penalty != 1.0:
        logits = penalize_repetition(logits, input_ids, repetition_penalty)
    if no_repeat_ngram_size:
        logits = ban_repeated_ngrams(logits, input_ids, no_repeat_ngram_size)
    return logits
