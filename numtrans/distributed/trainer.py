"""``DistributedTrainer``: ``Trainer`` with its step made data-parallel (PyTorch DDP's recipe).

One step on every rank r of P, with ``get_batch`` returning rank r's rows of the global batch::

    for micro_step in range(grad_accum_steps):
        w_r = n_r P / N                                   # 1 for equal shards (see data.py)
        loss_r = w_r loss_fn(model, shard_r) / grad_accum_steps;  loss_r.backward()  # local grads
    [mean loss, gradient presence] = Allreduce(SUM)([loss_r, has_grad...]) / P    # one small message
    if mean loss is not finite: stop or skip -- on every rank alike (they all see the same mean)
    grads = GradientBuckets.allreduce_()           # a few large Allreduces: mean gradient
    clip_grad_norm_(grads); optimizer.step(); scheduler.step()   # the same update on every rank

With ``zero=1`` (ZeRO-1, zero.py) the optimiser keeps the state of its own parameters only and
all-gathers them after its step; with ``zero=2`` (zero2.py) the gradients are also sharded:
``GradientShards.reduce_()`` sends each to its owner alone and ``clip_grad_norm_sharded_`` clips
by the global norm, formed from every rank's share of it.

Everything else is the plain ``Trainer``: the loop, the logging, the history, early stopping.
What changes around it:

* ``synchronize()`` (call it after building, and after ``resume``): rank 0's parameters are
  broadcast and every rank's state hash is compared.
* ``evaluate`` averages the ranks' validation losses (each rank evaluates its shard).
* ``save_checkpoint`` compares the hashes, then rank 0 alone writes; ``resume`` has rank 0 read
  and the others receive (no shared disk needed). A checkpoint holds the whole (replicated)
  state and the batch stream does not depend on P, so it resumes on any number of ranks that
  divides the global batch.
* Random streams: the batch stream is the same on every rank (see ``data.py``); dropout's stream
  is reseeded at every step from ``(seed, step, rank)``, so it differs between ranks (each shard
  gets its own masks), is reproducible, and continues the same way after a resume with any P.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .. import random as nt_random
from ..training.trainer import NonFiniteLossError, Trainer, _count_tokens
from .data import batch_rows
from .reduce import allreduce_sum
from .state import broadcast_parameters, check_same_state, replicated_digest
from .world import World, check_on_main
from .zero import ZeroRedundancyOptimizer, zero_stage
from .zero2 import average_gradients_, clip_averaged_, gradient_bytes, gradient_reducer


def rank_seed(seed: int, step: int, rank: int) -> int:
    """The dropout seed of ``rank`` at ``step``: independent streams from one base seed."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


@dataclass
class DistributedTrainer(Trainer):
    """``Trainer(model, optimizer, get_batch, config, ..., world=World(comm), bucket_mb=25)``.

    ``get_batch`` must return this rank's shard (``numtrans.distributed.shard_batcher``).
    ``comm_seconds`` / ``messages`` (on ``self.buckets``) measure the gradient communication;
    ``header_seconds`` the small Allreduce before it, where ranks wait for the slowest one.
    ``zero``: 0/False plain DDP, 1/True ZeRO-1, 2 ZeRO-2 (``zero_stage``; ``self.zero_stage`` is
    the number). After each step, ``grad_norm`` is the global norm of the gradient before
    clipping (None without ``grad_clip``) and ``held_gradient_bytes`` the gradient bytes this
    rank held at the optimiser step (all of them, or with ZeRO-2 its own shard).
    """

    world: World | None = None
    bucket_mb: float = 25.0
    zero: bool | int = False  # ZeRO stage: 1 shards the optimiser state, 2 the gradients too

    def __post_init__(self):
        super().__post_init__()
        if self.world is None:
            raise ValueError("DistributedTrainer needs world=World(comm)")
        self.zero_stage = zero_stage(self.zero)
        if self.zero_stage and not isinstance(self.optimizer, ZeroRedundancyOptimizer):
            self.optimizer = ZeroRedundancyOptimizer.from_optimizer(self.optimizer, self.world.comm)
        params = [p for p in self.model.parameters() if p.requires_grad]
        # ZeRO-2: each gradient goes to its parameter's owner only (zero2.py)
        comm = self.world.comm
        self.buckets = gradient_reducer(
            params, self.optimizer, comm, self.zero_stage, self.bucket_mb
        )
        self.grad_norm, self.held_gradient_bytes = None, 0
        self.header_seconds = 0.0  # time in the small per-step Allreduce (loss, presence)

    # ------------------------------------------------------------------ identical ranks
    def synchronize(self, where: str = "at the start") -> None:
        """Broadcast rank 0's parameters, then check that every rank's state hashes the same."""
        broadcast_parameters(self.model.parameters(), self.world.comm)
        self.check_same_state(where)

    def check_same_state(self, where: str) -> None:
        # (with ZeRO-1 the shards of the optimiser state differ by design: replicated_digest)
        check_same_state(self.world.comm, replicated_digest(self.model, self.optimizer), where)

    # ------------------------------------------------------------------ one step
    def train_step(self) -> tuple[float, int]:
        """One data-parallel optimiser step; returns (mean loss over all ranks, global tokens)."""

        cfg, size = self.config, self.world.size
        nt_random.manual_seed(rank_seed(cfg.seed, self.step, self.world.rank))
        total, tokens = 0.0, 0
        for _ in range(cfg.grad_accum_steps):
            batch = self.get_batch("train", self.rng)
            weight = self.shard_weight(batch)
            if weight == 0.0:  # an empty shard (a short last batch): nothing to compute here
                continue
            loss = self.loss_fn(self.model, batch)
            value = float(loss.item())
            total += value * weight
            tokens += _count_tokens(batch)
            if math.isfinite(value):  # (a non-finite loss is handled below, on every rank alike)
                scaled = loss if weight == 1.0 else loss * weight
                (scaled / cfg.grad_accum_steps).backward()
        # one small message: the mean loss and, per parameter, how many ranks have a gradient
        start = time.perf_counter()  # (also the wait for the slowest rank to finish its backward)
        summed = allreduce_sum(np.concatenate([[total], self.buckets.presence()]), self.world.comm)
        self.header_seconds += time.perf_counter() - start
        mean_loss = summed[0] / size / cfg.grad_accum_steps
        if not math.isfinite(mean_loss):
            if cfg.on_nonfinite == "skip":  # drop this update on every rank
                self.optimizer.zero_grad()
                self.skipped_steps += 1
                self.step += 1
                return math.nan, tokens * size
            raise NonFiniteLossError(
                f"the training loss is {mean_loss} at step {self.step + 1} (mean over {size} "
                "ranks): training stopped before updating the weights (the last checkpoint is "
                "kept). Lower the learning rate, or set on_nonfinite='skip' to drop such steps"
            )
        average_gradients_(self.buckets, present=summed[1:])  # (ZeRO-2: on the owners only)
        if cfg.grad_clip is not None:  # the norm of the averaged gradient, the same everywhere
            self.grad_norm = clip_averaged_(self.buckets, cfg.grad_clip, self.world.comm)
        self.held_gradient_bytes = gradient_bytes(self.buckets.params)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad()
        self.step += 1
        return float(mean_loss), tokens * size

    def shard_weight(self, batch) -> float:
        """``n_r P / N`` for this rank's ``n_r`` of the global batch's ``N`` rows, or of the terms
        its loss averages (``ShardBatcher.count``, data.py): 1.0 for equal shards, and whenever
        ``get_batch`` does not say the global batch's size."""
        total = getattr(self.get_batch, "global_count", None)
        if not total:
            return 1.0
        count = getattr(self.get_batch, "count", batch_rows)
        return count(batch) * self.world.size / total

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> float:
        """Mean validation loss of the global batches: each rank evaluates its shard of the same
        batches, weighted by its share of the rows (``_val_loss``), and the ranks' means add up."""
        local = super().evaluate()
        return float(allreduce_sum(np.array([local]), self.world.comm)[0] / self.world.size)

    def _val_loss(self, batch) -> float:
        weight = self.shard_weight(batch)
        return weight * super()._val_loss(batch) if weight else 0.0  # an empty shard adds 0

    # ------------------------------------------------------------------ checkpoints
    def resume(self, path=None, say=None, check_state=None) -> None:
        """Rank 0 reads the checkpoint (``Trainer.resume``; an error there is reported once and
        ends every rank); the others receive its state over MPI, so only rank 0 needs the files.
        The parameters follow in ``synchronize``, which must be called next."""
        check_on_main(self.world, lambda: Trainer.resume(self, path, say, check_state))
        self._receive_training_state()

    def _receive_training_state(self) -> None:
        """Rank 0's optimiser state (arrays by ``Bcast``) and loop state (small, by ``bcast``)."""
        from ..optim import optimizer_state_from_flat, optimizer_state_to_flat

        comm, main = self.world.comm, self.world.is_main
        header = None
        if main:  # (with ZeRO-1, the full state rank 0 read: its own shard alone is kept)
            full = self.__dict__.pop("_read_optimizer_state", None) or self.optimizer.state_dict()
            arrays, meta = optimizer_state_to_flat(full)
            header = {
                "optimizer": meta,
                "arrays": {k: (v.shape, v.dtype.str) for k, v in arrays.items()},
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "loop": (
                    self.step,
                    self.rng.bit_generator.state,
                    nt_random.get_rng_state(),
                    self.history,
                    self.best_val,
                    self._bad_evals,
                ),
            }
        header = comm.bcast(header, root=0)
        if not main:
            arrays = {k: np.empty(shape, dtype) for k, (shape, dtype) in header["arrays"].items()}
        for name in sorted(arrays):
            comm.Bcast(arrays[name], root=0)
        if main:
            return
        # (ZeroRedundancyOptimizer.load_state_dict keeps this rank's shard of it)
        self.optimizer.load_state_dict(optimizer_state_from_flat(arrays, header["optimizer"]))
        if self.scheduler is not None and header["scheduler"] is not None:
            self.scheduler.load_state_dict(header["scheduler"])
        step, rng, global_rng, self.history, self.best_val, self._bad_evals = header["loop"]
        self.step = int(step)
        self.rng.bit_generator.state = rng
        nt_random.set_rng_state(global_rng)

    def _load_optimizer_state(self, state_dict: dict) -> None:
        if isinstance(self.optimizer, ZeroRedundancyOptimizer):  # rank 0 passes it on in full
            self._read_optimizer_state = state_dict
        self.optimizer.load_state_dict(state_dict)

    def save_checkpoint(self):
        """Check that the ranks agree, then rank 0 alone writes (the others return None); with
        ZeRO (1 or 2) the optimiser's shards are gathered on rank 0 first, so the file is a plain checkpoint."""
        self.check_same_state(f"before the step-{self.step} checkpoint")
        if isinstance(self.optimizer, ZeroRedundancyOptimizer):
            self.optimizer.consolidate_state_dict(to=0)
        if self.world.is_main:
            return super().save_checkpoint()
        return None
