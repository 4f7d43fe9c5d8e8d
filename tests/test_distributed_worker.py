"""The program ``tests/test_distributed.py`` starts under ``mpirun -n P`` (no tests of its own).

    mpirun -n P python tests/test_distributed_worker.py train OUT DTYPE STEPS [plain|zero]
        k data-parallel steps of a tiny GPT on a global batch of GLOBAL_BATCH rows (``zero``:
        with ZeRO-1); rank 0 writes the parameters to OUT (safetensors) and the communication
        counts and each rank's optimiser-state bytes to OUT.json
    mpirun -n P python tests/test_distributed_worker.py drift
        rank 1 changes one weight after a step: the hash check before the checkpoint must stop
    mpirun -n P python tests/test_distributed_worker.py die HOW
        rank 1 fails at step 2 (HOW: ``exit`` = os._exit, ``raise`` = an exception) while the
        others carry on into the next Allreduce: the job must end, not hang

``build`` and ``batcher`` are shared with the one-process reference in the tests.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

GLOBAL_BATCH = 4
BLOCK = 8
VOCAB = 11


def build(dtype: str, seed: int = 0):
    """A tiny GPT (2 layers, 16 wide) in ``dtype``, its AdamW and the warmup-cosine schedule."""
    import numtrans as nt
    from numtrans.models.gpt import GPT, GPTConfig
    from numtrans.optim import AdamW, WarmupCosineLR, param_groups_for_weight_decay

    nt.manual_seed(seed)
    config = GPTConfig(block_size=BLOCK, vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=16)
    model = GPT(config).to(np.dtype(dtype))
    groups = param_groups_for_weight_decay(model.named_parameters(), 0.1)
    optimizer = AdamW(groups, lr=3e-3, betas=(0.9, 0.99))
    scheduler = WarmupCosineLR(optimizer, warmup_steps=2, total_steps=20, min_lr=3e-4)
    return model, optimizer, scheduler


def batcher(batch_size: int = GLOBAL_BATCH):
    """``get_batch(split, rng)`` over a fixed random token stream (the global batch)."""
    from numtrans.training.pretrain_data import make_batcher

    ids = np.random.default_rng(7).integers(0, VOCAB, size=400)
    return make_batcher(ids[:300], ids[300:], BLOCK, batch_size)


def train_config(steps: int):
    from numtrans.training.trainer import TrainConfig

    return TrainConfig(max_steps=steps, eval_interval=steps, eval_batches=2, log_interval=1,
                       grad_clip=0.5, seed=3, progress=False)  # fmt: skip


def train(out: str, dtype: str, steps: int, how: str = "bucketed") -> None:
    from safetensors.numpy import save_file

    from numtrans import distributed as dist

    world = dist.init_world()
    model, optimizer, scheduler = build(dtype, seed=world.rank)  # different on purpose:
    get_batch = dist.shard_batcher(batcher(), world.rank, world.size)  # the broadcast fixes it
    trainer = dist.DistributedTrainer(model, optimizer, get_batch, train_config(steps),
                                      scheduler=scheduler, world=world, bucket_mb=0.004,
                                      zero=how == "zero")  # fmt: skip
    if how == "plain":  # the textbook version: one Allreduce per parameter
        trainer.buckets.allreduce_ = lambda present=None: dist.allreduce_gradients_plain(
            trainer.buckets.params, world.comm
        )
    with dist.abort_on_error(world):
        trainer.synchronize()
        history = trainer.train()
        trainer.check_same_state("at the end")
        held = world.comm.gather(dist.optimizer_state_bytes(trainer.optimizer), root=0)
    if world.is_main:
        save_file({k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}, out)
        counts = {"buckets": len(trainer.buckets), "messages": trainer.buckets.messages,
                  "history": history, "world": world.size, "state_bytes": held}  # fmt: skip
        with open(out + ".json", "w", encoding="utf-8") as f:
            json.dump(counts, f)


def die(how: str) -> None:
    from numtrans import distributed as dist

    world = dist.init_world()
    model, optimizer, scheduler = build("float32")
    get_batch = dist.shard_batcher(batcher(), world.rank, world.size)
    trainer = dist.DistributedTrainer(model, optimizer, get_batch, train_config(50),
                                      scheduler=scheduler, world=world)  # fmt: skip
    step = trainer.train_step

    def failing_step():
        if world.rank == 1 and trainer.step == 2:
            if how == "exit":
                os._exit(3)
            raise RuntimeError("rank 1 failed on purpose")
        return step()

    trainer.train_step = failing_step
    with dist.abort_on_error(world):
        trainer.synchronize()
        trainer.train()


def drift() -> None:
    from numtrans import distributed as dist

    world = dist.init_world()
    model, optimizer, scheduler = build("float32")
    get_batch = dist.shard_batcher(batcher(), world.rank, world.size)
    trainer = dist.DistributedTrainer(model, optimizer, get_batch, train_config(5),
                                      scheduler=scheduler, world=world)  # fmt: skip
    with dist.abort_on_error(world):
        trainer.synchronize()
        trainer.train_step()
        if world.rank == 1:
            next(iter(model.parameters())).data.flat[0] += 1e-6
        trainer.save_checkpoint()


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "train":
        train(rest[0], rest[1], int(rest[2]), *rest[3:])
    elif mode == "drift":
        drift()
    elif mode == "die":
        die(rest[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
