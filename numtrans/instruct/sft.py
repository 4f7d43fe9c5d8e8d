"""Supervised fine-tuning examples: the loss only on what the assistant says.

A conversation becomes ``ids`` (T + 1,) via :func:`apply_chat_template`; the model reads
``input_ids = ids[:-1]`` and predicts ``labels = ids[1:]``, where every label that is not an
assistant token is ``IGNORE_INDEX`` (-100, PyTorch's ``cross_entropy`` default): the model is not
trained to predict the user's words or the role markers it is given.

:func:`bucket_batches` groups examples of similar length (sorted by length, then cut into
batches) and right-pads them: with a causal mask a real token never sees the padding that follows
it, so no attention mask is needed, and sorting keeps the padding (wasted compute) small.
"""

from __future__ import annotations

import numpy as np

from .template import apply_chat_template

IGNORE_INDEX = -100


def sft_example(
    messages, tokenizer, max_length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids (T,), labels (T,)) int64; labels are ``IGNORE_INDEX`` off the assistant's tokens.

    ``max_length`` keeps the first ``max_length`` positions (a cut answer still trains).
    """
    ids, mask = apply_chat_template(messages, tokenizer, return_mask=True)
    ids, mask = np.asarray(ids, np.int64), np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("an SFT example needs at least one assistant turn")
    input_ids, labels = ids[:-1], np.where(mask[1:], ids[1:], IGNORE_INDEX)
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return input_ids, labels


def bucket_batches(examples, batch_size: int, pad_id: int, shuffle_seed: int | None = None):
    """Length-bucketed, right-padded batches: list of (input_ids (B, T), labels (B, T)).

    Padding positions get ``pad_id`` as input and ``IGNORE_INDEX`` as label.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    batches = []
    for start in range(0, len(order), batch_size):
        group = [examples[i] for i in order[start : start + batch_size]]
        width = max(len(x) for x, _ in group)
        x = np.full((len(group), width), pad_id, np.int64)
        y = np.full((len(group), width), IGNORE_INDEX, np.int64)
        for b, (xi, yi) in enumerate(group):
            x[b, : len(xi)], y[b, : len(yi)] = xi, yi
        batches.append((x, y))
    if shuffle_seed is not None:  # shuffle the batch order, not their contents
        np.random.default_rng(shuffle_seed).shuffle(batches)
    return batches
