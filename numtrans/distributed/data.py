"""Per-rank shards of every global batch.

A data-parallel step trains on one *global* batch of ``B`` rows split across ``P`` ranks, ``b =
B / P`` rows each. Here every rank draws the whole global batch's window starts from the *same*
seeded stream (drawing ``B`` integers costs nothing next to a forward pass) and keeps only its
own rows::

    starts = rng.integers(0, N - T, size=B)          # identical on every rank (same seed)
    rank r keeps rows  r*b .. (r+1)*b - 1            # a contiguous slice of the global batch

So P ranks x b rows see exactly the rows one process with ``B`` rows sees, in the same order:
the averaged gradient is that process's gradient (to rounding), the data order does not depend
on P, and a run resumed with another number of ranks continues the same stream of batches.

Equal shards are the simple case: the mean of P shard means is the global mean only when the
shards have the same size, so a recipe whose batches are always full (pretraining) refuses a
``B`` that ``P`` does not divide (``check_shardable``, with the nearest batch sizes that work).

Uneven batches (``even=False``): fine-tuning's last batch of an epoch, or a validation set
smaller than the batch, has ``N`` rows that ``P`` may not divide. Rank r then keeps rows
``N r // P .. N (r + 1) // P - 1`` (sizes differ by at most one; a rank may get none), and
``ShardBatcher.global_rows`` remembers ``N``, from which ``DistributedTrainer`` weights rank r's
mean loss by ``n_r P / N``: the average over ranks of the weighted gradients is
``sum_r n_r g_r / N``, the gradient of the global batch's mean, as in one process. A loss that
is a mean over tokens rather than rows (masked LM: the masked positions) counts those instead:
``ShardBatcher(count=fn)`` with ``fn(batch)`` the number of terms the loss averages, and the
weight becomes ``m_r P / M`` for the shard's ``m_r`` of the batch's ``M`` terms. (Rows are the
default, exact for one target per row or the same number of targets in every row.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data.collate import IGNORE_INDEX


def check_ranks_fit(batch_size: int, world_size: int, name: str = "batch_size") -> None:
    """A one-line ValueError when a full batch has fewer rows than there are ranks."""
    if world_size > batch_size:
        raise ValueError(
            f"{world_size} ranks exceed {name}={batch_size}: every rank needs at least one row "
            f"(use at most {batch_size} ranks, or {name} >= {world_size})"
        )


def check_shardable(batch_size: int, world_size: int, name: str = "batch_size") -> int:
    """Rows per rank, ``batch_size // world_size``; a one-line ValueError if that is not exact."""
    check_ranks_fit(batch_size, world_size, name)
    if batch_size % world_size:
        lower = batch_size - batch_size % world_size
        raise ValueError(
            f"{name}={batch_size} does not split evenly over {world_size} ranks: it is the "
            f"global batch, so choose a multiple of {world_size} (e.g. {lower} or "
            f"{lower + world_size})"
        )
    return batch_size // world_size


def shard_bounds(rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s rows among ``rows``: sizes differ by at most one."""
    return rows * rank // world_size, rows * (rank + 1) // world_size


def batch_rows(batch) -> int:
    """The number of rows (axis 0) of a batch: an array, or the first array of a tuple/list/dict."""
    while isinstance(batch, (dict, tuple, list)):
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(batch)


def labelled_tokens(batch: dict) -> int:
    """The positions a token-mean loss averages over, ``batch["labels"]`` other than
    ``IGNORE_INDEX`` (masked LM's masked tokens, a translation's target tokens): the ``count``
    for ``ShardBatcher`` when the loss is a mean over them."""
    return int(np.count_nonzero(batch["labels"] != IGNORE_INDEX))


def shard_rows(batch, rank: int, world_size: int, even: bool = True):
    """Rank ``rank``'s rows of a batch: every array (or the arrays of a tuple, list or dict)
    sliced along axis 0. ``even=True``: ``world_size`` equal parts, ``(B, ...)`` -> ``(B / P, ...)``
    (a one-line error if P does not divide B); ``even=False``: ``shard_bounds``."""
    if isinstance(batch, dict):
        return {k: shard_rows(v, rank, world_size, even) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard_rows(v, rank, world_size, even) for v in batch)
    if not even:
        start, stop = shard_bounds(len(batch), rank, world_size)
        return batch[start:stop]
    rows = check_shardable(len(batch), world_size, name="the batch's rows")
    return batch[rank * rows : (rank + 1) * rows]


class ShardBatcher:
    """``get_batch(split, rng)`` (which returns the global batch) wrapped to return this rank's
    rows. The ``rng`` advances exactly as it would in one process; ``global_rows`` is the row
    count of the last global batch, ``global_count`` its ``count(batch)`` (rows unless told: what
    ``DistributedTrainer`` weights uneven shards by, with ``count`` applied to the shard)."""

    def __init__(self, get_batch: Callable, rank: int, world_size: int, even: bool = True,
                 count: Callable = batch_rows):  # fmt: skip
        self.get_batch, self.rank, self.world_size, self.even = get_batch, rank, world_size, even
        self.count = count
        self.global_rows: int | None = None
        self.global_count: int | None = None

    def __call__(self, split: str, rng):
        batch = self.get_batch(split, rng)
        self.global_rows, self.global_count = batch_rows(batch), self.count(batch)
        return shard_rows(batch, self.rank, self.world_size, self.even)


def shard_batcher(get_batch: Callable, rank: int, world_size: int, even: bool = True,
                  count: Callable = batch_rows):  # fmt: skip
    """``ShardBatcher(get_batch, rank, world_size, even, count)``: this rank's rows of every
    batch."""
    return ShardBatcher(get_batch, rank, world_size, even, count)
