"""Turning lists of variable-length examples into rectangular batches.

A batch of sequences of lengths 3 and 1, right-padded with ``pad_id = 0``::

    input_ids       attention_mask   labels (padded with ignore_index = -100)
    [[5, 6, 7],     [[1, 1, 1],      [[6, 7, 8],
     [9, 0, 0]]      [1, 0, 0]]       [4, -100, -100]]

The loss ignores ``labels == ignore_index`` (PyTorch's ``cross_entropy`` default -100), so
padding never contributes to the gradient; the attention mask keeps real tokens from
attending to padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IGNORE_INDEX = -100


def pad_sequences(
    seqs: Sequence[Sequence[int]],
    pad_value: int = 0,
    max_length: int | None = None,
    dtype=np.int64,
) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad to the longest sequence (or ``max_length``): ``(padded (B, T), mask (B, T))``.

    The mask is int64, 1 on real entries and 0 on padding.
    """
    seqs = [np.asarray(s).reshape(-1) for s in seqs]
    width = max((len(s) for s in seqs), default=0)
    if max_length is not None:
        if width > max_length:
            raise ValueError(f"a sequence has {width} entries > max_length={max_length}")
        width = max_length
    out = np.full((len(seqs), width), pad_value, dtype=dtype)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for b, s in enumerate(seqs):
        out[b, : len(s)] = s
        mask[b, : len(s)] = 1
    return out, mask


def causal_lm_example(ids: Sequence[int]) -> dict[str, np.ndarray]:
    """One sequence as a next-token example: ``input_ids = ids[:-1]``, ``labels = ids[1:]``."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < 2:
        raise ValueError(f"a causal-LM example needs at least 2 tokens, got {len(ids)}")
    return {"input_ids": ids[:-1], "labels": ids[1:]}


class Collator:
    """Collate a list of dict examples into a dict of arrays.

    * a key in ``label_keys`` (default ``labels``) holding sequences is padded
      with ``ignore_index``;
    * any other sequence is padded with ``pad_id``; ``input_ids`` also gets an
      ``attention_mask`` and a key ``<name>_ids`` gets a ``<name>_mask`` (``src_ids`` ->
      ``src_mask``);
    * scalars (class labels, regression targets) are stacked into a ``(B,)`` array.

    Example: ``Collator(pad_id=0)([{"input_ids": [5, 6], "label": 1}, {"input_ids": [7],
    "label": 0}])`` gives ``input_ids = [[5, 6], [7, 0]]``, ``attention_mask = [[1, 1], [1, 0]]``
    and ``label = [1, 0]``.
    """

    def __init__(
        self,
        pad_id: int = 0,
        ignore_index: int = IGNORE_INDEX,
        label_keys: Sequence[str] = ("labels",),
        max_length: int | None = None,
    ):
        self.pad_id = pad_id
        self.ignore_index = ignore_index
        self.label_keys = set(label_keys)
        self.max_length = max_length

    def __call__(self, examples: Sequence[dict]) -> dict[str, np.ndarray]:
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        keys = list(examples[0])
        for i, ex in enumerate(examples):
            if list(ex) != keys:
                raise ValueError(f"example {i} has keys {list(ex)}, expected {keys}")
        batch: dict[str, np.ndarray] = {}
        for key in keys:
            values = [ex[key] for ex in examples]
            if np.ndim(values[0]) == 0:
                batch[key] = np.asarray(values)
                continue
            pad = self.ignore_index if key in self.label_keys else self.pad_id
            batch[key], mask = pad_sequences(values, pad, self.max_length)
            if key == "input_ids":
                batch["attention_mask"] = mask
            elif key.endswith("_ids"):
                batch[key.removesuffix("_ids") + "_mask"] = mask
        return batch
