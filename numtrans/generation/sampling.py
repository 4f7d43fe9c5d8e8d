"""Choosing the next token from the model's logits.

Given logits z (B, V) for the next position:

* greedy:       argmax_v z_v                                   (``temperature=0``)
* temperature:  p = softmax(z / T); T < 1 sharpens, T > 1 flattens the distribution
* top-k:        keep the k largest logits, set the rest to -inf, then sample
* top-p:        keep the smallest set of tokens whose probability adds up to >= p ("nucleus"),
                always at least the most likely one, then sample

Sampling uses the given ``np.random.Generator`` so a seed reproduces the text exactly.
"""

from __future__ import annotations

import math

import numpy as np

from ..functional.activations import softmax_array


def filter_top_k(logits: np.ndarray, k: int) -> np.ndarray:
    """Logits with everything below the k-th largest (per row) set to -inf."""
    if k <= 0:
        raise ValueError(f"top_k must be positive, got {k}")
    if k >= logits.shape[-1]:
        return logits
    kth = np.partition(logits, -k, axis=-1)[..., -k, None]
    return np.where(logits < kth, -np.inf, logits)


def filter_top_p(logits: np.ndarray, p: float) -> np.ndarray:
    """Logits outside the nucleus of cumulative probability ``p`` set to -inf."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")
    order = np.argsort(-logits, axis=-1, kind="stable")
    sorted_probs = np.take_along_axis(softmax_array(logits.astype(np.float64)), order, axis=-1)
    before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass of strictly better tokens
    drop_sorted = before >= p  # the token that crosses p is kept, so the top one always is
    drop = np.empty_like(drop_sorted)
    np.put_along_axis(drop, order, drop_sorted, axis=-1)
    return np.where(drop, -np.inf, logits)


def sample_next(
    logits: np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Next token ids (B,) from logits (B, V)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (B, V), got {logits.shape}")
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if top_p is not None and not math.isfinite(top_p):
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if np.isnan(logits).any() or np.isposinf(logits).any():
        # NaN weights (or an overflow) would otherwise pick token 0 or the last one, silently
        raise FloatingPointError(
            "the model's logits contain NaN or +inf: refusing to sample (are the weights finite?)"
        )
    if temperature == 0:
        return np.argmax(logits, axis=-1)
    logits = logits / temperature
    if top_k is not None:
        logits = filter_top_k(logits, top_k)
    if top_p is not None:
        logits = filter_top_p(logits, top_p)
    probs = softmax_array(logits)
    rng = rng if rng is not None else np.random.default_rng()
    # inverse-CDF sampling, one uniform number per row
    u = rng.random((probs.shape[0], 1))
    ids = np.sum(np.cumsum(probs, axis=-1) < u * probs.sum(axis=-1, keepdims=True), axis=-1)
    return np.minimum(ids, probs.shape[-1] - 1)
