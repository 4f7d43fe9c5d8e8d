"""The program ``tests/test_zero2.py`` starts under ``mpirun -n 2`` (no tests of its own).

mpirun -n P python tests/test_zero2_worker.py OUT DTYPE STEPS ZERO
    STEPS data-parallel steps (gradient clipping on) of the tiny GPT of
    ``test_distributed_worker`` plus ``spare``, a parameter the loss never uses (no rank has
    its gradient), with ``DistributedTrainer(zero=ZERO)`` (0, 1 or 2). Rank 0 writes the
    parameters to OUT (safetensors) and to OUT.json the history, the gradient norm of every
    step and, per rank: the parameters it held a gradient for at each optimiser step, the
    ones it owns, and the gradient bytes it held then.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from test_distributed_worker import batcher, build, train_config


def build_with_spare(dtype: str, seed: int):
    """``build``'s GPT, AdamW and schedule, with one more parameter that gets no gradient."""
    from numtrans.nn import Parameter
    from numtrans.optim import AdamW, WarmupCosineLR, param_groups_for_weight_decay

    model, _, _ = build(dtype, seed)
    model.spare = Parameter(np.full((4, 8), 0.5, dtype=np.dtype(dtype)))
    groups = param_groups_for_weight_decay(model.named_parameters(), 0.1)
    optimizer = AdamW(groups, lr=3e-3, betas=(0.9, 0.99))
    scheduler = WarmupCosineLR(optimizer, warmup_steps=2, total_steps=20, min_lr=3e-4)
    return model, optimizer, scheduler


def train(out: str, dtype: str, steps: int, zero: int) -> None:
    from safetensors.numpy import save_file

    from numtrans import distributed as dist

    world = dist.init_world()
    model, optimizer, scheduler = build_with_spare(dtype, seed=world.rank)  # (the broadcast fixes)
    get_batch = dist.shard_batcher(batcher(), world.rank, world.size)
    trainer = dist.DistributedTrainer(model, optimizer, get_batch, train_config(steps),
                                      scheduler=scheduler, world=world, bucket_mb=0.004,
                                      zero=zero)  # fmt: skip
    names = {id(p): n for n, p in model.named_parameters()}
    held, norms, held_bytes = [], [], []
    inner = trainer.optimizer.step

    def step(closure=None):  # what this rank holds when the optimiser steps
        held.append(sorted(names[id(p)] for p in model.parameters() if p.grad is not None))
        norms.append(trainer.grad_norm)
        held_bytes.append(trainer.held_gradient_bytes)
        return inner(closure)

    trainer.optimizer.step = step
    with dist.abort_on_error(world):
        trainer.synchronize()
        history = trainer.train()
        trainer.check_same_state("at the end")
        zero_opt = trainer.optimizer if zero else None
        owned = sorted(names[id(p)] for p in zero_opt.params if zero_opt.owns(p)) if zero else []
        ranks = world.comm.gather({"held": held, "owned": owned, "held_bytes": held_bytes}, root=0)
    if world.is_main:
        save_file({k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}, out)
        info = {"history": history, "norms": norms, "ranks": ranks, "messages": trainer.buckets.messages,
                "buckets": len(trainer.buckets)}  # fmt: skip
        with open(out + ".json", "w", encoding="utf-8") as f:
            json.dump(info, f)


if __name__ == "__main__":
    train(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
