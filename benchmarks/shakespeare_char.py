"""Pretrain a character-level GPT on Tiny Shakespeare and check the validation loss target.

Runs the library's pretraining job (``numtrans.recipes.pretrain.make_config(preset, overrides)``
then ``run``) and prints a table: configuration, steps, wall time, best and final validation
loss (nats per character), tokens per second, and a generated sample.

Presets and targets (from the issue):

* ``shakespeare``: nanoGPT's CPU configuration (4 layers, 4 heads, 128 wide, block 64, batch 12,
  2,000 iterations, dropout 0). nanoGPT reaches about 1.88; target: validation loss <= 1.90.
* ``large``: 6 layers, 6 heads, 192 wide, block 128, batch 32, 3,000 iterations;
  target: validation loss <= 1.60 within 30 minutes.

A full run takes many minutes of every core. ``--max-steps 20`` checks that the script works
(the targets are only judged for a full run).

    python benchmarks/shakespeare_char.py --preset shakespeare [--threads 2]
    python benchmarks/shakespeare_char.py --preset large
    python benchmarks/shakespeare_char.py --max-steps 20           # a quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=["shakespeare", "large"], default="shakespeare")
    p.add_argument("--max-steps", type=int, default=None, help="override the preset's steps")
    p.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    p.add_argument(
        "--out-dir", default=None, help="where the model is saved (default: a temp directory)"
    )
    p.add_argument("--seed", type=int, default=1337)
    return p.parse_args(argv)


ARGS = parse_args()
# BLAS reads its thread count when NumPy loads it (threadpoolctl, if present, also limits it).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)


# preset -> (validation loss target in nats/char, wall-time limit in seconds or None)
from _common import blas_line, limit_blas_threads  # noqa: E402

from numtrans.functional import _dispatch  # noqa: E402
from numtrans.recipes.pretrain import PRESETS, make_config, run  # noqa: E402

TARGETS = {"shakespeare": (1.90, None), "large": (1.60, 30 * 60)}


def main() -> int:
    args = ARGS
    limiter = limit_blas_threads(args.threads)
    out_dir = args.out_dir or os.path.join(tempfile.gettempdir(), f"numtrans-bench-{args.preset}")
    overrides = {"out_dir": out_dir, "seed": args.seed, "progress": False}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
        # keep the warmup shorter than a shortened run, as the schedule expects
        warmup = make_config(args.preset).warmup_steps
        overrides["warmup_steps"] = min(warmup, max(args.max_steps // 10, 1))
    cfg = make_config(args.preset, overrides)
    full = cfg.max_steps == make_config(args.preset).max_steps

    print(f"preset {args.preset!r}: {PRESETS[args.preset] or '(PretrainConfig defaults)'}")
    print(
        f"{blas_line()}; attention backend {_dispatch.resolve_backend('auto', cfg.dropout)}; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
    )
    load_before = os.getloadavg()
    t0 = time.perf_counter()

    def say(text: str) -> None:
        """The job's messages with the time since the start (the sample is printed below)."""
        if not text.startswith("---- sample"):
            print(f"[{time.perf_counter() - t0:7.1f} s] {text}", flush=True)

    result = run(cfg, say=say, overwrite=True)  # a benchmark re-runs into its own directory
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()

    history = result["history"]
    vals = [v for v in history["val_loss"] if v is not None]
    rates = [r for r in history["tokens_per_sec"] if r]
    steps = result["steps"]
    tokens = steps * cfg.batch_size * cfg.block_size * cfg.grad_accum_steps
    target, limit = TARGETS[args.preset]
    best = result["best_val_loss"]
    reached = [
        (step, sec)
        for step, val, sec in zip(history["step"], history["val_loss"], history["elapsed"])
        if val is not None and val <= target
    ]

    rows = [
        (
            "config",
            f"{cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} wide, block "
            f"{cfg.block_size}, batch {cfg.batch_size}, dropout {cfg.dropout}, lr "
            f"{cfg.learning_rate:g} -> {cfg.min_lr:g}, warmup {cfg.warmup_steps}",
        ),
        ("steps", f"{steps:,} of {cfg.max_steps:,} ({tokens:,} training tokens)"),
        ("wall time", f"{wall:,.1f} s (whole job: data, training, evaluations, save, sample)"),
        ("best validation loss", f"{best:.4f} nats/char"),
        ("final validation loss", f"{vals[-1]:.4f} nats/char" if vals else "-"),
        (
            f"first at <= {target:.2f}",
            f"step {reached[0][0]:,}, {reached[0][1] / 60:.1f} min into training"
            if reached
            else "never",
        ),
        (
            "tokens / s",
            f"{tokens / wall:,.0f} overall; median of logged training intervals "
            f"{statistics.median(rates):,.0f}"
            if rates
            else f"{tokens / wall:,.0f} overall",
        ),
        ("threads / load average", f"{args.threads} / {load_before[0]:.2f} -> {load_after[0]:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print()
    print(f"| {'':<{width}} | value")
    print(f"|{'-' * (width + 2)}|{'-' * 40}")
    for key, value in rows:
        print(f"| {key:<{width}} | {value}")
    print()
    if full:
        ok = best <= target and (limit is None or wall <= limit)
        within = f" within {limit // 60} minutes" if limit else ""
        print(
            f"target: validation loss <= {target:.2f}{within}: "
            f"{'met' if ok else 'NOT met'} (best {best:.4f}, {wall / 60:.1f} min)"
        )
    else:
        print(f"short run ({steps} steps): the target (<= {target:.2f}) is judged on a full run")
    sample = result["sample"]
    print(f"\nsample ({len(sample)} characters, temperature {cfg.temperature}):\n{sample}")
    if limiter is not None:
        limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    sys.exit(main())
