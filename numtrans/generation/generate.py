"""Autoregressive text generation for decoder-only models (GPT).

    for each new token:
        logits = model(context)[:, -1, :]        # scores for the next token only
        next   = sample_next(logits, ...)        # greedy / temperature / top-k / top-p
        context = concat(context, next)

Without a cache every step re-runs the model over the whole context (cost grows with its length).
With the KV cache (``nn/kv_cache.py``) the first step ("prefill") runs over the prompt and stores
each layer's keys and values; every later step feeds only the newest token. Both give the same
tokens for the same seed. A context longer than ``block_size`` is cropped to its last
``block_size`` tokens (positions are relative to the window), so the cache is rebuilt from the
window whenever that happens.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..autograd import no_grad
from .sampling import sample_next


def generate(
    model,
    idx,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    callback: Callable[[np.ndarray, int], None] | None = None,
    use_cache: bool = True,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Extend ``idx`` (B, T) by up to ``max_new_tokens`` tokens; returns (B, T + n) int64.

    ``eos_id``: a row that produced it keeps emitting it, and generation stops once every row has.
    ``callback(tokens (B,), step)`` is called with each new column (streaming).
    ``rng``: a Generator or a seed, for reproducible sampling.
    """
    idx = np.asarray(getattr(idx, "data", idx), dtype=np.int64)
    if idx.ndim == 1:
        idx = idx[None, :]
    if idx.ndim != 2 or idx.shape[1] == 0:
        raise ValueError(
            f"idx must be a non-empty (B, T) array of token ids, got shape {idx.shape}"
        )
    vocab = model.config.vocab_size
    if idx.min() < 0 or idx.max() >= vocab:
        raise ValueError(f"prompt token ids must lie in [0, {vocab}), got {idx.min()}..{idx.max()}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    block = model.config.block_size
    was_training = model.training
    model.eval()
    done = np.zeros(idx.shape[0], dtype=bool)
    cache = model.make_kv_cache() if use_cache else None
    fed = 0  # how many tokens of the current window the cache already holds
    with no_grad():
        for step in range(max_new_tokens):
            if cache is None:
                logits, _ = model(idx[:, -block:])
            else:
                if idx.shape[1] > block or fed == 0:  # (re)fill the cache from the window
                    cache = model.make_kv_cache()
                    window = idx[:, -block:] if idx.shape[1] > block else idx
                    logits, _ = model(window, kv_cache=cache)
                    fed = window.shape[1]
                else:
                    logits, _ = model(idx[:, -1:], kv_cache=cache)
                    fed += 1
            nxt = sample_next(logits.data[:, -1, :], temperature, top_k, top_p, rng)
            if eos_id is not None:
                nxt = np.where(done, eos_id, nxt)
                done |= nxt == eos_id
            idx = np.concatenate([idx, nxt[:, None].astype(np.int64)], axis=1)
            if callback is not None:
                callback(nxt, step)
            if eos_id is not None and done.all():
                break
    if was_training:
        model.train()
    return idx
