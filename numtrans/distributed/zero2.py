"""ZeRO stage 2: each gradient reduced to the rank that owns its parameter, and nowhere else.

ZeRO-1 (``zero.py``) shards Adam's moments: rank r updates only the parameters it owns. But it
still all-reduces every gradient, so every rank holds the whole mean gradient and uses 1/P of it.
Stage 2 sends each gradient only where it is used::

    owner(p)   = ZeroRedundancyOptimizer's plan (partition_parameters: whole parameters)
    buckets    = per owner r: r's parameters in model order, one dtype per bucket, ~bucket_mb each
    for every bucket b (the same order on every rank):
        Reduce(SUM, root=owner(b))(this rank's local gradients of b)
        owner:  g = sum / P  (the mean, as in plain DDP)        others:  p.grad = None
    clip by the GLOBAL norm   ||G|| = ( sum_r sum_{j owned by r} ||g_j||^2 )^(1/2)
    owners step; the parameters are all-gathered (ZeroRedundancyOptimizer.step, as in ZeRO-1)

Why ``Reduce(root=owner)`` per bucket and not one ``Reduce_scatter``: ``Reduce_scatter`` needs
the owners' shards laid out contiguously in one send buffer the size of the model, rebuilt on
every rank every step; with whole-parameter ownership scattered through the model that is a
model-sized copy. Owner-aligned buckets keep the DDP design (a few messages of about
``bucket_mb``, the same knob) and the extra memory to one bucket: a rank keeps the buffers of
its own buckets (~n/P numbers) and fills a temporary one to send each of the others'. Each
rank still sends about n numbers per step in all, the same volume as a reduce-scatter's input.

Clipping must see the whole gradient, but no rank holds it any more. ``clip_grad_norm_sharded_``
sends one number per parameter: the norm of its gradient on the rank that holds it, 0 elsewhere.
After an ``Allreduce(SUM)`` (x + 0 = x exactly) every rank has the same list of per-tensor norms
that ``clip_grad_norm_`` builds in one process, combines it the same way (so the total is the
same bits, not only the same number up to rounding), and scales its own gradients.

What this lesson does not do: the paper reduces each bucket *during* the backward, as soon as
its gradients are complete, so the whole local gradient never exists at once. Here the reduction
comes after the backward (and after all micro-steps of gradient accumulation), so the peak
during the backward is still the full local gradient (n); what ZeRO-2 saves is what a rank holds
from the reduction on: n/P instead of n (``gradient_bytes``, measured by ``benchmarks/ddp.py``).
With P = 2, ``Reduce`` adds the same two numbers as ``Allreduce`` does (a + b = b + a exactly),
so the result is bit-identical to plain DDP; with more ranks MPI may sum in another order.
"""

from __future__ import annotations

import time

import numpy as np

from ..optim.clip import _norm
from .reduce import GradientBuckets, live_entries, pack_gradients


def _mpi():
    from mpi4py import MPI

    return MPI


def gradient_bytes(params) -> int:
    """Bytes of the gradients ``params`` hold now (``p.grad`` that are not None)."""
    return sum(p.grad.nbytes for p in params if p.grad is not None)


class GradientShards:
    """ZeRO-2's counterpart of ``GradientBuckets``: buckets grouped by owner, each reduced to it.

    ``params``: the parameters in a fixed order, the same on every rank; ``owner[j]``: the rank
    that updates ``params[j]`` (``ZeroRedundancyOptimizer.owner_of``). Bucket ``k`` holds
    consecutive parameters of one owner and one dtype, up to ``bucket_mb`` (a single larger
    tensor gets a bucket of its own); only the owner keeps its buffer. After ``reduce_()``
    the owner's ``p.grad`` is a view into that buffer and every other rank's is None.
    ``comm_seconds`` adds up the time inside ``Reduce``, ``messages`` the number of calls.
    """

    def __init__(self, params, owner: list[int], comm, bucket_mb: float = 25.0):
        if not bucket_mb > 0:
            raise ValueError(f"bucket_mb={bucket_mb!r}: the bucket size must be > 0 megabytes")
        self.params = [p for p in params if getattr(p, "requires_grad", True)]
        if len(owner) != len(self.params):
            raise ValueError(f"{len(owner)} owners for {len(self.params)} parameters")
        self.comm, self.rank = comm, comm.Get_rank()
        self.bucket_bytes = int(bucket_mb * 2**20)
        self.owner = list(owner)
        # (owner, dtype, numbers, [(p, offset)], buffer: the owner's, None on the other ranks)
        self.buckets: list[tuple[int, np.dtype, int, list[tuple[object, int]], object]] = []
        for r in sorted(set(self.owner)):  # owner 0's buckets first: the same order everywhere
            self._plan([p for p, o in zip(self.params, self.owner) if o == r], r)
        self.comm_seconds = 0.0
        self.messages = 0

    def _plan(self, params, owner: int) -> None:
        current, dtype, used = [], None, 0
        for p in params:
            nbytes = p.data.size * p.data.dtype.itemsize
            if current and (p.data.dtype != dtype or used + nbytes > self.bucket_bytes):
                self._add_bucket(current, dtype, owner)
                current, used = [], 0
            current.append(p)
            dtype, used = p.data.dtype, used + nbytes
        if current:
            self._add_bucket(current, dtype, owner)

    def _add_bucket(self, params, dtype, owner: int) -> None:
        entries, offset = [], 0
        for p in params:
            entries.append((p, offset))
            offset += p.data.size
        buffer = np.zeros(offset, dtype=dtype) if owner == self.rank else None
        self.buckets.append((owner, dtype, offset, entries, buffer))

    def __len__(self) -> int:
        return len(self.buckets)

    def held_bytes(self) -> int:
        """Bytes of the bucket buffers this rank keeps (its own buckets: ~1/P of the model)."""
        return sum(buf.nbytes for *_, buf in self.buckets if buf is not None)

    def presence(self) -> np.ndarray:
        """1.0 where this rank holds ``p.grad``, else 0.0 (see ``GradientBuckets.presence``)."""
        return np.array([p.grad is not None for p in self.params], dtype=np.float64)

    def reduce_(self, present: np.ndarray | None = None) -> None:
        """Every gradient's mean over the ranks, on its owner only; the others drop theirs.

        ``present[j]`` (optional): how many ranks hold ``params[j]``'s gradient this step (the
        summed ``presence``); a parameter no rank touched keeps ``grad=None`` everywhere, one that
        only some touched counts as zero on the others. Without ``present`` every rank must hold
        a gradient for every parameter.
        """
        MPI, size = _mpi(), self.comm.Get_size()
        index = {id(p): j for j, p in enumerate(self.params)}
        for owner, dtype, count, entries, buffer in self.buckets:
            live = live_entries(entries, present, index)
            if not live:
                continue
            mine = owner == self.rank
            # the owner receives into its buffer; the others fill a temporary one to send
            flat = buffer if mine else np.zeros(count, dtype=dtype)
            pack_gradients(flat, live)
            start = time.perf_counter()
            if mine:
                self.comm.Reduce(MPI.IN_PLACE, flat, op=MPI.SUM, root=owner)
            else:
                self.comm.Reduce(flat, None, op=MPI.SUM, root=owner)
            self.comm_seconds += time.perf_counter() - start
            self.messages += 1
            if mine:
                flat /= size
            for p, off in live:  # the owner's is a view into its bucket; the others' is gone
                p.grad = flat[off : off + p.data.size].reshape(p.data.shape) if mine else None


def clip_grad_norm_sharded_(parameters, max_norm: float, comm, norm_type: float = 2.0) -> float:
    """``clip_grad_norm_`` over a gradient spread across the ranks; returns the global norm.

    Every rank passes the same ``parameters`` (in the same order) and holds the gradients of
    some of them: each gradient on one rank at most (after ``GradientShards.reduce_``). The
    global norm of the whole gradient ``G``, for ``norm_type = 2``::

        ||G||^2 = sum_r sum_{j held by r} ||g_j||^2

    is formed from the per-tensor norms, each sent by the rank that holds it (one float64 per
    parameter, 0 elsewhere, and a flag per parameter: who holds one) in one ``Allreduce(SUM)``:
    the list is then exactly ``clip_grad_norm_``'s and the total is the same bits as one
    process's. Every rank scales its own gradients by ``min(max_norm / (||G|| + 1e-6), 1)``.
    """
    if not max_norm >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm}")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type}")
    MPI, params = _mpi(), list(parameters)
    sent = np.zeros(2 * len(params), dtype=np.float64)  # [norms | holds a gradient]
    for j, p in enumerate(params):
        if p.grad is not None:
            sent[j], sent[len(params) + j] = _norm(p.grad, norm_type), 1.0
    comm.Allreduce(MPI.IN_PLACE, sent, op=MPI.SUM)
    norms, holders = sent[: len(params)], sent[len(params) :]
    if holders.max(initial=0.0) > 1:
        raise ValueError(
            f"{int((holders > 1).sum())} gradient(s) are held by more than one rank: the global "
            "norm would count them twice (reduce them to their owners first: GradientShards)"
        )
    held = norms[holders > 0]  # the gradients that exist, in order: clip_grad_norm_'s list
    total_norm = _norm(held, norm_type) if held.size else 0.0
    clip_coef = max_norm / (total_norm + 1e-6)
    if not clip_coef >= 1.0:  # already short enough: leave the gradients alone (NaN falls through)
        for p in params:
            if p.grad is not None:
                p.grad *= clip_coef
    return total_norm


# ------------------------------------------------------------- the step, for any ZeRO stage
def gradient_reducer(params, optimizer, comm, stage: int, bucket_mb: float = 25.0):
    """What averages a step's gradients: ``GradientShards`` (ZeRO-2: each to its parameter's
    owner, ``optimizer`` being the ``ZeroRedundancyOptimizer``) or ``GradientBuckets`` (every
    rank gets every mean gradient: plain DDP and ZeRO-1)."""
    if stage == 2:
        return GradientShards(params, [optimizer.owner_of(p) for p in params], comm, bucket_mb)
    return GradientBuckets(params, comm, bucket_mb)


def average_gradients_(reducer, present=None) -> None:
    """The mean gradient over the ranks: everywhere (``GradientBuckets.allreduce_``), or on each
    parameter's owner only (``GradientShards.reduce_``)."""
    if isinstance(reducer, GradientShards):
        reducer.reduce_(present=present)
    else:
        reducer.allreduce_(present=present)


def clip_averaged_(reducer, max_norm: float, comm, params=None) -> float:
    """Clip the averaged gradient of ``params`` (default ``reducer.params``; the same list on
    every rank) to ``max_norm``, the same on every rank: ``clip_grad_norm_`` where every rank
    holds it all, the global norm from every rank's share (``clip_grad_norm_sharded_``) under
    ZeRO-2. Returns the norm before clipping."""
    params = reducer.params if params is None else list(params)
    if isinstance(reducer, GradientShards):
        return clip_grad_norm_sharded_(params, max_norm, comm)
    from ..optim import clip_grad_norm_

    return clip_grad_norm_(params, max_norm)
