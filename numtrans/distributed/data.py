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

Shards must be equal: the mean of P shard means is the global mean only when the shards have the
same size, so ``check_shardable`` refuses a ``B`` that ``P`` does not divide, with the nearest
batch sizes that work.
"""

from __future__ import annotations

from collections.abc import Callable


def check_shardable(batch_size: int, world_size: int, name: str = "batch_size") -> int:
    """Rows per rank, ``batch_size // world_size``; a one-line ValueError if that is not exact."""
    if world_size > batch_size:
        raise ValueError(
            f"{world_size} ranks exceed {name}={batch_size}: every rank needs at least one row "
            f"(use at most {batch_size} ranks, or {name} >= {world_size})"
        )
    if batch_size % world_size:
        lower = batch_size - batch_size % world_size
        raise ValueError(
            f"{name}={batch_size} does not split evenly over {world_size} ranks: it is the "
            f"global batch, so choose a multiple of {world_size} (e.g. {lower} or "
            f"{lower + world_size})"
        )
    return batch_size // world_size


def shard_rows(batch, rank: int, world_size: int):
    """Rank ``rank``'s rows of a batch: every array (or the arrays of a tuple, list or dict)
    sliced along axis 0 into ``world_size`` equal parts. ``(B, ...)`` -> ``(B / P, ...)``."""
    if isinstance(batch, dict):
        return {k: shard_rows(v, rank, world_size) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard_rows(v, rank, world_size) for v in batch)
    rows = check_shardable(len(batch), world_size, name="the batch's rows")
    return batch[rank * rows : (rank + 1) * rows]


def shard_batcher(get_batch: Callable, rank: int, world_size: int) -> Callable:
    """Wrap ``get_batch(split, rng)`` (which returns the global batch) so that it returns this
    rank's rows. The ``rng`` advances exactly as it would in one process."""

    def get_shard(split: str, rng):
        return shard_rows(get_batch(split, rng), rank, world_size)

    return get_shard
