"""``DataParallelSteps``: the data-parallel part of a hand-written training loop.

``DistributedTrainer`` (trainer.py) makes ``Trainer``'s step data-parallel; loops that are not the
Trainer's (``numtrans.instruct``'s SFT and DPO) use this class for the same recipe, step by step::

    ddp = DataParallelSteps(world, optimizer, [model])      # broadcast rank 0's weights, compare
    for step ...:
        ddp.start_step(step)                                # per-rank dropout stream
        rows = ddp.rows(len(batch))                         # this rank's rows of the global batch
        w = ddp.weight(terms(batch[rows]), terms(batch))    # m_r P / M
        (w * loss(batch[rows])).backward()
        loss = ddp.mean([w * loss_value])                   # the global batch's loss
        ddp.average_gradients()                             # then clip, then optimizer.step()
    ddp.check_same_state("at the end")
"""

from __future__ import annotations

import numpy as np

from .. import random as nt_random
from .data import shard_bounds
from .reduce import allreduce_sum
from .state import broadcast_parameters, check_same_state, replicated_digest, state_digest
from .trainer import rank_seed
from .zero import ZeroRedundancyOptimizer, zero_stage
from .zero2 import average_gradients_, clip_averaged_, gradient_reducer


class DataParallelSteps:
    """The data-parallel part of an SFT or DPO step, over ``world``'s ranks.

    Every rank holds the whole global batch (the same seeded order on every rank) and trains on
    its rows, ``rows(n)`` (``shard_bounds``: sizes differ by at most one, a rank may get none).
    Rank r's loss is a mean over its ``m_r`` of the batch's ``M`` terms (answer tokens, examples,
    pairs): scaled by ``weight(m_r, M) = m_r P / M`` before the backward, the ranks' gradients
    average (``GradientBuckets``, which divides by P) to ``sum_r m_r g_r / M``, the gradient of
    the global batch's mean, as in one process (``numtrans.distributed.data``). The same weights
    turn the ranks' losses into the global batch's (``mean``). The caller clips the norm after
    ``average_gradients``, so every rank clips the same gradient and takes the same step.

    Built after the optimiser, before the first step: rank 0's parameters of every model in
    ``models`` (the trained one first; DPO's frozen reference) are broadcast and the state
    hashes compared; ``check_same_state("at the end")`` compares them again after the last step.
    ``zero=True`` (or 1) shards the optimiser's state over the ranks (ZeRO-1, zero.py); ``zero=2``
    the gradients too (zero2.py): step with ``self.optimizer`` (the wrapper) from then on, and
    clip with ``self.clip_grad_norm_``, which takes the global norm when no rank holds it all.
    """

    def __init__(self, world, optimizer, models, seed: int = 0, zero: bool = False):
        self.stage = zero_stage(zero)
        if self.stage:
            optimizer = ZeroRedundancyOptimizer.from_optimizer(optimizer, world.comm)
        self.world, self.optimizer, self.models, self.seed = world, optimizer, list(models), seed
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.buckets = gradient_reducer(params, optimizer, world.comm, self.stage)
        self._present = None
        for model in self.models:
            broadcast_parameters(model.parameters(), world.comm)
        self.check_same_state("at the start")

    def check_same_state(self, where: str) -> None:
        """Every model's parameters and the optimiser's state hash the same on every rank."""
        first, *others = self.models
        digests = [replicated_digest(first, self.optimizer)] + [state_digest(m) for m in others]
        check_same_state(self.world.comm, "".join(digests), where)

    def start_step(self, step: int) -> None:
        """Reseed dropout from ``(seed, step, rank)`` (``rank_seed``): each rank's rows get
        their own masks, reproducibly (the data-parallel trainer's streams)."""
        nt_random.manual_seed(rank_seed(self.seed, step, self.world.rank))

    def rows(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n``."""
        return slice(*shard_bounds(n, self.world.rank, self.world.size))

    def weight(self, local: float, total: float) -> float:
        """``m_r P / M``; 0 for a batch without terms (its loss is 0 in one process too)."""
        return local * self.world.size / total if total else 0.0

    def mean(self, weighted) -> np.ndarray:
        """The global batch's statistics from this rank's weighted ones (``value * weight``),
        sent in one message with which gradients this rank holds (for ``average_gradients``)."""
        k = len(weighted)
        summed = allreduce_sum(np.concatenate([weighted, self.buckets.presence()]),
                               self.world.comm)  # fmt: skip
        self._present = summed[k:]
        return summed[:k] / self.world.size

    def average_gradients(self) -> None:
        """Every gradient replaced by its mean over the ranks (a parameter no rank touched keeps
        ``grad=None``); with ZeRO-2 on its owner only, the others drop it. Call after ``mean``."""
        average_gradients_(self.buckets, self._present)

    def clip_grad_norm_(self, params, max_norm: float) -> float:
        """``clip_grad_norm_`` of the averaged gradient, the same on every rank; with ZeRO-2 from
        every rank's share of it (``clip_averaged_``). Returns the norm before clipping."""
        return clip_averaged_(self.buckets, max_norm, self.world.comm, params)

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (a time limit: rank 0's clock decides for all)."""
        return bool(self.world.comm.bcast(bool(flag), root=0))
