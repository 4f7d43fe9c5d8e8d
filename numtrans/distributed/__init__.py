"""Data-parallel training over MPI (mpi4py), the way PyTorch's DistributedDataParallel does it.

``mpirun -n P`` starts P identical processes (ranks). Each holds a full copy of the model and
the optimiser, trains on its own 1/P of every global batch, and after the backward the ranks
average their gradients with ``Allreduce``; the identical averaged gradient gives an identical
update on every rank, so the copies never drift apart. The pieces, one file each:

* ``world.py``   who am I (rank), how many are we; clear errors without mpi4py or mpirun;
                 ``abort_on_error`` so that one failing rank stops the job instead of hanging it
* ``data.py``    every rank draws the global batch from the same seeded stream and keeps its
                 rows: P ranks x b rows == 1 process x P*b rows
* ``reduce.py``  gradient averaging: one Allreduce per parameter (plain) and in a few flat
                 buckets (what is used)
* ``state.py``   rank 0's parameters broadcast at the start; a hash of parameters + optimiser
                 state compared across ranks at the start and at every checkpoint
* ``trainer.py`` ``DistributedTrainer``: ``Trainer`` with the data-parallel step
* ``steps.py``   ``DataParallelSteps``: the same step for hand-written loops (SFT, DPO)
* ``zero.py``    ZeRO-1 (``DistributedTrainer(..., zero=True)``, ``ddp_zero=true``): each rank
                 keeps the optimiser state of its own parameters only, then all-gathers them
* ``zero2.py``   ZeRO-2 (``zero=2``, ``ddp_zero=2``): each gradient is reduced to its owner
                 only (the others drop it), clipped by the global norm from every rank's share

``numtrans pretrain --ddp`` (``numtrans.recipes.pretrain``) puts them together; rank 0 alone
logs and writes. Install with ``pip install 'numtrans[mpi]'``. Importing this package does not
import mpi4py (``init_world`` does).
"""

from .data import (
    ShardBatcher,
    batch_rows,
    check_ranks_fit,
    check_shardable,
    labelled_tokens,
    shard_batcher,
    shard_bounds,
    shard_rows,
)
from .reduce import GradientBuckets, allreduce_gradients_plain, allreduce_sum
from .state import broadcast_parameters, check_same_state, state_digest
from .steps import DataParallelSteps
from .trainer import DistributedTrainer, rank_seed
from .world import (
    DistributedError,
    World,
    abort_on_error,
    check_on_main,
    init_world,
    launched_by_mpirun,
    launcher_rank,
    quiet,
    quiet_unless_main,
    require_ddp,
    require_mpi,
    self_world,
    share_from_main,
)
from .zero import (
    ZeroRedundancyOptimizer,
    optimizer_state_bytes,
    partition_parameters,
    zero_says,
    zero_stage,
)
from .zero2 import GradientShards, clip_grad_norm_sharded_, gradient_bytes

__all__ = [
    "DataParallelSteps",
    "DistributedError",
    "DistributedTrainer",
    "ZeroRedundancyOptimizer",
    "ShardBatcher",
    "batch_rows",
    "GradientBuckets",
    "GradientShards",
    "World",
    "abort_on_error",
    "allreduce_gradients_plain",
    "allreduce_sum",
    "broadcast_parameters",
    "check_on_main",
    "clip_grad_norm_sharded_",
    "check_ranks_fit",
    "check_same_state",
    "check_shardable",
    "gradient_bytes",
    "init_world",
    "launched_by_mpirun",
    "labelled_tokens",
    "launcher_rank",
    "optimizer_state_bytes",
    "partition_parameters",
    "rank_seed",
    "quiet",
    "quiet_unless_main",
    "require_ddp",
    "require_mpi",
    "self_world",
    "share_from_main",
    "shard_batcher",
    "shard_bounds",
    "shard_rows",
    "state_digest",
    "zero_says",
    "zero_stage",
]
