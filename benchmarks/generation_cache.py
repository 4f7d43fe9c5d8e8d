"""Text generation with and without the KV cache: the same tokens, how much faster?

The benchmark-size GPT (4 layers, 4 heads, 128 wide, vocabulary 65) with ``block_size`` 256,
random weights, generates 256 new tokens from a 1-token prompt (batch 1, temperature 1, fixed
seed) with ``numtrans.generation.generate.generate(..., use_cache=True)`` and with
``use_cache=False``. The runs alternate (cache, no cache, cache, ...) in one process; the table
gives the median of ``--runs`` runs of each, and the tokens of every run are compared.

Without a cache, new token t re-runs the model over all t tokens of the context, so a whole
generation costs O(n^2) token-forwards (and O(n^3) attention); with the cache each step feeds
one token and attends over the stored keys and values. The issue's target is a speedup >= 5x.

    python benchmarks/generation_cache.py [--threads 2] [--runs 3] [--tokens 256]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/generation_cache.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    p.add_argument("--runs", type=int, default=3, help="timed runs of each variant")
    p.add_argument("--tokens", type=int, default=256, help="new tokens per run")
    p.add_argument("--seed", type=int, default=1337)
    return p.parse_args(argv)


ARGS = parse_args()
# BLAS reads its thread count when NumPy loads it (threadpoolctl, if present, also limits it).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
from _common import blas_line, limit_blas_threads  # noqa: E402

import numtrans as nt  # noqa: E402
from numtrans.functional import _dispatch  # noqa: E402
from numtrans.generation.generate import generate  # noqa: E402
from numtrans.models.gpt import GPT, GPTConfig  # noqa: E402

TARGET = 5.0


def main() -> int:
    args = ARGS
    limiter = limit_blas_threads(args.threads)
    n_ctx = max(256, args.tokens)  # prompt + tokens - 1 positions are ever fed to the model
    nt.manual_seed(0)
    model = GPT(
        GPTConfig(block_size=n_ctx, vocab_size=65, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
    )
    prompt = np.zeros((1, 1), dtype=np.int64)

    def run(use_cache: bool):
        t0 = time.perf_counter()
        out = generate(model, prompt, args.tokens, temperature=1.0, use_cache=use_cache,
                       rng=args.seed)  # fmt: skip
        return time.perf_counter() - t0, out

    load_before = os.getloadavg()
    generate(model, prompt, 8, use_cache=True, rng=0)  # warm-up (imports, first allocations)
    generate(model, prompt, 8, use_cache=False, rng=0)
    times = {True: [], False: []}
    outputs = {True: [], False: []}
    for _ in range(args.runs):
        for use_cache in (True, False):
            dt, out = run(use_cache)
            times[use_cache].append(dt)
            outputs[use_cache].append(out)
    load_after = os.getloadavg()

    reference = outputs[True][0]
    same = all(np.array_equal(o, reference) for v in outputs.values() for o in v)
    cached, uncached = statistics.median(times[True]), statistics.median(times[False])
    speedup = uncached / cached

    print(
        f"GPT 4L/4H/128, vocab 65, block_size {n_ctx}, {model.num_params():,} parameters "
        f"(random weights), float32; {args.tokens} new tokens from a 1-token prompt, batch 1, "
        f"temperature 1, seed {args.seed}"
    )
    print(
        f"{blas_line()}; attention backend {_dispatch.resolve_backend('auto', 0.0)}; "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
    )
    print(
        f"median of {args.runs} runs each, alternating; load average before "
        f"{load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs, shared)"
    )
    print()
    rows = [
        ("KV cache (use_cache=True)", cached, times[True]),
        ("no cache (use_cache=False)", uncached, times[False]),
    ]
    print(f"| {'':<27} | {'s / generation':>14} | {'tokens / s':>10} | {'runs (s)':<24} |")
    print(f"|{'-' * 29}|{'-' * 16}|{'-' * 12}|{'-' * 26}|")
    for label, med, all_times in rows:
        runs = ", ".join(f"{t:.2f}" for t in all_times)
        print(f"| {label:<27} | {med:>14.3f} | {args.tokens / med:>10.1f} | {runs:<24} |")
    print()
    verdict = "meets" if speedup >= TARGET else "MISSES"
    print(f"speedup with the cache: {speedup:.1f}x ({verdict} the target >= {TARGET:.0f}x)")
    print(
        f"generated tokens identical in all {2 * args.runs} runs: {'yes' if same else 'NO'}"
        + ("" if same else f" (first run with cache {reference[0, :20].tolist()} ...)")
    )
    if limiter is not None:
        limiter.restore_original_limits()
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
