"""Autoregressive text generation for decoder-only models (GPT).

    for each new token:
        logits = model(context)[:, -1, :]        # scores for the next token only
        logits = apply_repetition_controls(logits, context, ...)   # optional (logits_process.py)
        next   = sample_next(logits, ...)        # greedy / temperature / top-k / top-p
        context = append(context, next)

The output is one (B, T + max_new_tokens) int64 buffer allocated up front; each step writes its
column into it and the model reads a view of the filled part (concatenating a new array every
step would copy the whole history each time: quadratic in the length).

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
from .logits_process import (
    apply_repetition_controls,
    check_no_repeat_ngram_size,
    check_repetition_penalty,
)
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
    no_repeat_ngram_size: int = 0,
    repetition_penalty: float = 1.0,
) -> np.ndarray:
    """Extend ``idx`` (B, T) by up to ``max_new_tokens`` tokens; returns (B, T + n) int64.

    ``eos_id``: a row that produced it keeps emitting it, and generation stops once every row has.
    ``callback(tokens (B,), step)`` is called with each new column (streaming).
    ``rng``: a Generator or a seed, for reproducible sampling.
    ``no_repeat_ngram_size``, ``repetition_penalty``: repetition control over the prompt and the
    generated tokens, before temperature / top-k / top-p (``logits_process.py``; 0 and 1.0: off).
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
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    no_repeat_ngram_size = check_no_repeat_ngram_size(no_repeat_ngram_size)
    repetition_penalty = check_repetition_penalty(repetition_penalty)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    block = model.config.block_size
    was_training = model.training
    model.eval()
    B, T = idx.shape
    out = np.empty((B, T + max_new_tokens), dtype=np.int64)  # filled left to right
    out[:, :T] = idx
    cur = T  # out[:, :cur] holds the tokens so far
    done = np.zeros(B, dtype=bool)
    cache = model.make_kv_cache() if use_cache else None
    fed = 0  # how many tokens of the current window the cache already holds
    with no_grad():
        for step in range(max_new_tokens):
            start = max(0, cur - block)  # the model sees at most block_size tokens
            if cache is None:
                logits, _ = model(out[:, start:cur])
            else:
                if cur > block or fed == 0:  # (re)fill the cache from the window
                    cache = model.make_kv_cache()
                    logits, _ = model(out[:, start:cur], kv_cache=cache)
                    fed = cur - start
                else:
                    logits, _ = model(out[:, cur - 1 : cur], kv_cache=cache)
                    fed += 1
            z = apply_repetition_controls(
                logits.data[:, -1, :], out[:, :cur], no_repeat_ngram_size, repetition_penalty
            )
            if (np.isneginf(z).all(axis=-1) & ~done).any():
                raise ValueError(
                    f"no_repeat_ngram_size={no_repeat_ngram_size} bans every token at step "
                    f"{step}: use a larger size (or none) for this vocabulary"
                )
            nxt = sample_next(z, temperature, top_k, top_p, rng)
            if eos_id is not None:
                nxt = np.where(done, eos_id, nxt)
                done |= nxt == eos_id
            out[:, cur] = nxt
            cur += 1
            if callback is not None:
                callback(nxt, step)
            if eos_id is not None and done.all():
                break
    if was_training:
        model.train()
    return out[:, :cur] if cur < out.shape[1] else out
