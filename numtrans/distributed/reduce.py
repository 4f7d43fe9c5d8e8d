"""Averaging gradients across ranks: the one collective data-parallel training needs per step.

Every rank computed ``g_r``, the gradient of its own shard's mean loss. The gradient of the mean
loss over the whole global batch (P equal shards) is their mean::

    g = (g_0 + g_1 + ... + g_{P-1}) / P          MPI_Allreduce(SUM), then divide by P

After the average every rank holds the same ``g``, takes the same optimiser step from the same
parameters, and so stays identical to the others without ever sending parameters again.

Two ways to do it, both here:

* ``allreduce_gradients_plain``: one ``Allreduce`` per parameter tensor. Obvious, but a GPT has
  dozens of tensors, many tiny (biases, LayerNorm gains), and every message pays a fixed latency.
* ``GradientBuckets``: copy the gradients into a few flat buffers of about ``bucket_mb`` each and
  reduce each buffer with one ``Allreduce`` (PyTorch DDP's design; its default is 25 MB). Few
  large messages use the link's bandwidth instead of paying its latency per tensor.

``Allreduce`` is called in place (``MPI.IN_PLACE``) on contiguous NumPy arrays: mpi4py hands their
memory to MPI directly, with no pickling. Gradients of one dtype share a bucket (MPI reduces one
datatype per call).
"""

from __future__ import annotations

import time

import numpy as np


def _mpi():
    from mpi4py import MPI

    return MPI


def allreduce_gradients_plain(params, comm) -> None:
    """Average ``p.grad`` over the ranks, one ``Allreduce`` per parameter (the textbook version;
    ``GradientBuckets`` does the same in a few messages). Parameters without a gradient are left
    alone: every rank must then have none for them (the same model on same-shaped batches)."""
    MPI, size = _mpi(), comm.Get_size()
    for p in params:
        if p.grad is None:
            continue
        grad = np.ascontiguousarray(p.grad)
        comm.Allreduce(MPI.IN_PLACE, grad, op=MPI.SUM)
        grad /= size
        p.grad = grad


def live_entries(entries, present, index) -> list:
    """A bucket's ``(parameter, offset)`` entries that some rank holds a gradient for this step
    (all of them without ``present``; ``index``: parameter id -> position in ``present``)."""
    return [(p, off) for p, off in entries if present is None or present[index[id(p)]]]


def pack_gradients(flat: np.ndarray, live) -> None:
    """Copy each parameter's gradient into its slice of the flat bucket; zeros where this rank
    has none (only when another rank has: ``live_entries``)."""
    for p, off in live:
        view = flat[off : off + p.data.size]
        if p.grad is None:
            view.fill(0)
        else:
            view[...] = p.grad.reshape(-1)


class GradientBuckets:
    """Flat buffers that hold every gradient, reduced with one ``Allreduce`` each.

    ``params``: the parameters in a fixed order, the same on every rank (``model.parameters()``).
    Consecutive parameters of one dtype fill a bucket until it reaches ``bucket_mb`` megabytes (a
    single larger tensor gets a bucket of its own). Layout of bucket ``k`` (1-D, ``dtype``)::

        [ p_i.grad.ravel() | p_{i+1}.grad.ravel() | ... ]      offsets[j] .. offsets[j] + p_j.size

    After ``allreduce_()`` each ``p.grad`` is a view into its bucket (PyTorch's
    ``gradient_as_bucket_view``): no copy back. ``comm_seconds`` adds up the time spent inside
    ``Allreduce`` (for the benchmark), ``messages`` the number of calls.
    """

    def __init__(self, params, comm, bucket_mb: float = 25.0):
        if not bucket_mb > 0:
            raise ValueError(f"bucket_mb={bucket_mb!r}: the bucket size must be > 0 megabytes")
        self.params = [p for p in params if getattr(p, "requires_grad", True)]
        self.comm = comm
        self.bucket_bytes = int(bucket_mb * 2**20)
        self.buckets: list[tuple[np.ndarray, list[tuple[object, int]]]] = []  # (buffer, [(p, off)])
        self._plan()
        self.comm_seconds = 0.0
        self.messages = 0

    def _plan(self) -> None:
        current, dtype, used = [], None, 0
        for p in self.params:
            nbytes = p.data.size * p.data.dtype.itemsize
            if current and (p.data.dtype != dtype or used + nbytes > self.bucket_bytes):
                self._add_bucket(current, dtype)
                current, used = [], 0
            current.append(p)
            dtype, used = p.data.dtype, used + nbytes
        if current:
            self._add_bucket(current, dtype)

    def _add_bucket(self, params, dtype) -> None:
        entries, offset = [], 0
        for p in params:
            entries.append((p, offset))
            offset += p.data.size
        self.buckets.append((np.zeros(offset, dtype=dtype), entries))

    def __len__(self) -> int:
        return len(self.buckets)

    def allreduce_(self, present: np.ndarray | None = None) -> None:
        """Average every gradient over the ranks, in place.

        ``present[j]`` (optional, aligned with ``self.params``) counts the ranks on which
        parameter ``j`` has a gradient this step (see ``presence``): a parameter no rank touched
        keeps ``grad=None`` (the optimiser skips it, as it would in one process); one that only some
        ranks touched counts as zero on the others. Without ``present`` every rank must hold a
        gradient for every parameter.
        """
        MPI, size = _mpi(), self.comm.Get_size()
        index = {id(p): j for j, p in enumerate(self.params)}
        for flat, entries in self.buckets:
            live = live_entries(entries, present, index)
            if not live:
                continue
            pack_gradients(flat, live)
            start = time.perf_counter()
            self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
            self.comm_seconds += time.perf_counter() - start
            self.messages += 1
            flat /= size
            for p, off in live:
                p.grad = flat[off : off + p.data.size].reshape(p.data.shape)

    def presence(self) -> np.ndarray:
        """1.0 where this rank holds ``p.grad``, else 0.0 (one entry per parameter); summed over
        the ranks by ``allreduce_sum``, it tells ``allreduce_`` which gradients exist."""
        return np.array([p.grad is not None for p in self.params], dtype=np.float64)


def allreduce_sum(values: np.ndarray, comm) -> np.ndarray:
    """Element-wise sum over the ranks of a small float64 vector (a new array on every rank):
    the step's loss and the gradient presence flags travel together in one message."""
    MPI = _mpi()
    values = np.ascontiguousarray(values, dtype=np.float64).copy()
    comm.Allreduce(MPI.IN_PLACE, values, op=MPI.SUM)
    return values
