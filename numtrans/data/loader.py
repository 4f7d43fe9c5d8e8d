"""A small ``DataLoader``: index order, batching, collation. No workers, no magic.

One epoch::

    order = arange(N)                  or a permutation when shuffle=True
    for each run of batch_size indices in order:
        yield collate_fn([dataset[i] for i in run])

The permutation of epoch ``e`` comes from ``np.random.default_rng([seed, e])``: the same seed
gives the same sequence of epochs on any machine, and each epoch is shuffled differently.
Iterating the loader advances the epoch; ``set_epoch`` picks one explicitly (to resume).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np


def default_collate(examples: Sequence):
    """Stack examples of equal shape: tuples -> tuple of arrays, dicts -> dict of arrays.

    Variable-length sequences need padding: use :class:`.collate.Collator` as ``collate_fn``.
    """
    first = examples[0]
    if isinstance(first, tuple):
        return tuple(_stack([ex[k] for ex in examples], k) for k in range(len(first)))
    if isinstance(first, dict):
        return {k: _stack([ex[k] for ex in examples], k) for k in first}
    return _stack(examples, "example")


def _stack(values, name):
    shapes = {np.shape(v) for v in values}
    if len(shapes) > 1:
        raise ValueError(
            f"cannot stack field {name!r} with shapes {sorted(shapes)}: variable-length "
            "sequences need collate_fn=Collator(pad_id=...)"
        )
    return np.stack([np.asarray(v) for v in values])


class DataLoader:
    """Batches of ``dataset`` (any object with ``__len__`` and ``__getitem__``).

    ``len(loader)`` is the number of batches per epoch: ``ceil(N / batch_size)``, or
    ``floor(N / batch_size)`` with ``drop_last=True`` (which drops a short final batch).
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        collate_fn: Callable | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.collate_fn = collate_fn or default_collate
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """The example order of an epoch (default: the next one)."""
        epoch = self.epoch if epoch is None else epoch
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self) -> Iterator:
        order = self.indices()
        self.epoch += 1
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            run = order[start : start + self.batch_size]
            yield self.collate_fn([self.dataset[int(i)] for i in run])
