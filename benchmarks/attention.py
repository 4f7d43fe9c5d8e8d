"""Fused attention: the NumPy path vs the native kernel vs PyTorch's CPU SDPA, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/attention.py [--quick]

(unsetting the two OpenBLAS variables lets NumPy use its best BLAS kernel; the script prints
which one ran). For each shape, causal or not, dtype, pass (forward / forward+backward) and
thread count (1, 2), every implementation is timed round-robin in one process, so that load from
other programs hits all of them alike; the table shows medians.

* numpy  : ``F.scaled_dot_product_attention(backend="numpy")`` on numtrans Tensors (the readable
           path the tutorials use; its backward is numtrans' autograd). Skipped where its
           (B, H, N, M) score matrices would not fit comfortably (N = 16384: 1 GiB per head).
* native : ``numtrans.native.attention_forward`` / ``attention_backward`` (the C++ kernel).
* torch  : ``torch.nn.functional.scaled_dot_product_attention`` with the same thread count
           (optional: ``pip install torch==2.13.0``).

GFLOP/s counts 4 B H N M D for the forward (half when causal) and 2.5x that for the backward,
FlashAttention-2's convention, so recomputation is not credited. Peak extra memory is measured
in a fresh process per implementation with ``MALLOC_MMAP_THRESHOLD_=65536`` (large blocks go
back to the OS when freed): reset the high-water mark (write 5 to /proc/self/clear_refs), run one
call, and report VmHWM minus the VmRSS before the call. It includes the outputs, whose size is
shown as "out MB" (out + lse, plus dq, dk, dv for the backward).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAPES = [(1, 8, 1024, 64), (4, 8, 256, 64), (1, 12, 512, 64), (1, 8, 4096, 64), (1, 4, 16384, 64)]
QUICK = [(1, 8, 1024, 64), (4, 8, 256, 64), (1, 12, 512, 64)]
IMPLS = ("numpy", "native", "torch")
NUMPY_MAX_SCORES = 2**31  # bytes of one (B, H, N, M) score array the NumPy path may allocate


def cells(shapes):
    """(shape, dtype, causal, pass) to measure: float32 everywhere, float64 for one shape."""
    out = []
    for shape in shapes:
        dtypes = ["float32", "float64"] if shape == (1, 8, 1024, 64) else ["float32"]
        for dtype in dtypes:
            for causal in (False, True):
                for kind in ("fwd", "fwd+bwd"):
                    out.append((shape, dtype, causal, kind))
    return out


def flops(shape, causal, kind):
    B, H, N, D = shape
    f = 4 * B * H * N * N * D / (2 if causal else 1)
    return f * (3.5 if kind == "fwd+bwd" else 1.0)


def numpy_fits(shape, dtype):
    B, H, N, _ = shape
    return B * H * N * N * np.dtype(dtype).itemsize <= NUMPY_MAX_SCORES


# ------------------------------------------------------------------ one call of each implementation
def make_call(impl, shape, dtype, causal, kind):
    """A zero-argument function running one forward (or forward+backward), or None."""
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal(shape).astype(dtype) for _ in range(4))
    if impl == "native":
        from numtrans.native import attention_backward, attention_forward

        def call():
            out, lse = attention_forward(q, k, v, is_causal=causal)
            if kind == "fwd+bwd":
                attention_backward(g, q, k, v, out, lse, is_causal=causal)

        return call
    if impl == "numpy":
        if not numpy_fits(shape, dtype):
            return None
        import numtrans as nt
        from numtrans.functional.attention import scaled_dot_product_attention as sdpa

        tq, tk, tv = (nt.Tensor(x, requires_grad=kind == "fwd+bwd") for x in (q, k, v))

        def call():
            out = sdpa(tq, tk, tv, is_causal=causal, backend="numpy")
            if kind == "fwd+bwd":
                out.backward(g)

        return call
    try:
        import torch
    except ImportError:
        return None
    tq, tk, tv = (torch.from_numpy(x).requires_grad_(kind == "fwd+bwd") for x in (q, k, v))
    tg = torch.from_numpy(g)
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def call():
        if kind == "fwd":
            with torch.no_grad():
                sdpa(tq, tk, tv, is_causal=causal)
        else:
            sdpa(tq, tk, tv, is_causal=causal).backward(tg)

    return call


def set_threads(n):
    from threadpoolctl import threadpool_limits

    import numtrans as nt

    nt.set_num_threads(n)
    limits = threadpool_limits(n, user_api="blas")
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    return limits


def time_cell(calls, budget_s=3.0, max_reps=11):
    """(wall, cpu) seconds per call and implementation, round-robin; long calls run fewer times.

    cpu is the process CPU time (all threads): at one thread it is the time the call would take
    on an idle machine, which makes it the steadier figure when other programs share the cores.
    """

    def timed(call):
        w, c = time.perf_counter(), time.process_time()
        call()
        return time.perf_counter() - w, time.process_time() - c

    first = {name: timed(call) for name, call in calls.items()}
    slowest = max(w for w, _ in first.values())
    reps = 1 if slowest > budget_s else int(min(max_reps, max(3, budget_s / max(slowest, 1e-9))))
    if reps == 1:  # a call this long is its own warm-up
        return {name: [t] for name, t in first.items()}
    times = {name: [] for name in calls}
    for _ in range(reps):
        for name, call in calls.items():
            times[name].append(timed(call))
    return times


def memory_worker(impl, shapes):
    """Peak extra memory (bytes) of one call per cell; run in a fresh process."""

    def status(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        return 0

    set_threads(1)
    result = {}
    for shape, dtype, causal, kind in cells(shapes):
        call = make_call(impl, shape, dtype, causal, kind)
        if call is None:
            continue
        import gc

        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")
        before = status("VmRSS")
        call()
        result[json.dumps([shape, dtype, causal, kind])] = status("VmHWM") - before
    return result


def blas_info():
    from threadpoolctl import threadpool_info

    return ", ".join(
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '?')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the three small shapes")
    parser.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    parser.add_argument("--out", default="benchmarks/results", help="folder for JSON and plot")
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shapes = QUICK if args.quick else SHAPES
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker, shapes)))
        return

    from numtrans import backends

    if not backends.is_available("cpu"):
        sys.exit(f"the native module is not available: {backends.reason('cpu')}")
    cpu = backends.get("cpu")
    print(f"BLAS: {blas_info()}; native ISAs usable: {cpu.attention_isas()}")
    try:
        import torch

        print(f"torch {torch.__version__}; {torch.backends.cpu.get_cpu_capability()}")
    except ImportError:
        print("torch not installed: no PyTorch column (pip install torch==2.13.0)")
    print(f"machine: {os.cpu_count()} CPUs; timings are wall-clock medians, taken round-robin")

    rows = []
    for n in [int(x) for x in args.threads.split(",")]:
        limits = set_threads(n)
        for shape, dtype, causal, kind in cells(shapes):
            calls = {i: make_call(i, shape, dtype, causal, kind) for i in IMPLS}
            calls = {i: c for i, c in calls.items() if c is not None}
            times = time_cell(calls)
            wall = {i: float(np.median([w for w, _ in t])) * 1e3 for i, t in times.items()}
            cpu = {i: float(np.median([c for _, c in t])) * 1e3 for i, t in times.items()}
            row = dict(threads=n, shape=shape, dtype=dtype, causal=causal, kind=kind)
            rows.append(dict(row, ms=wall, cpu_ms=cpu))
            print(format_row(rows[-1], None), flush=True)
        limits.restore_original_limits()

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    memory = {}
    for impl in IMPLS:
        cmd = [sys.executable, __file__, "--memory-worker", impl] + (
            ["--quick"] if args.quick else []
        )
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            memory[impl] = json.loads(done.stdout.strip().splitlines()[-1])
    print_table(rows, memory, "wall-clock ms, median")
    one = [dict(r, ms=r["cpu_ms"]) for r in rows if r["threads"] == 1]
    print_table(one, memory, "1 thread, process CPU time ms, median (steadier on a busy machine)")
    save(rows, memory, Path(args.out))


def format_row(row, memory):
    B, H, N, D = row["shape"]
    ms = row["ms"]
    key = json.dumps([list(row["shape"]), row["dtype"], row["causal"], row["kind"]])
    gf = flops(row["shape"], row["causal"], row["kind"]) / (ms["native"] * 1e6)

    def cell(i):
        return f"{ms[i]:9.1f}" if i in ms else f"{'-':>9}"

    def ratio(i):
        return f"{ms[i] / ms['native']:6.2f}" if i in ms else f"{'-':>6}"

    mem = ""
    if memory is not None:
        mb = [memory.get(i, {}).get(key) for i in IMPLS]
        mem = " " + " ".join(f"{m / 2**20:8.1f}" if m is not None else f"{'-':>8}" for m in mb)
        outs = B * H * N * (D + 1) + (3 * B * H * N * D if row["kind"] == "fwd+bwd" else 0)
        mem += f" {outs * np.dtype(row['dtype']).itemsize / 2**20:7.1f}"
    return (
        f"| {row['threads']} | {B}x{H}x{N}x{D} | {row['dtype'][5:]:>2} | "
        f"{'yes' if row['causal'] else 'no':>3} | {row['kind']:>7} |"
        f"{cell('numpy')} {cell('native')} {cell('torch')} | {gf:6.1f} |"
        f" {ratio('numpy')} {ratio('torch')} |{mem}"
    )


def print_table(rows, memory, title):
    print(f"\n{title}")
    print(
        "| T | B x H x N x D | fp | causal | pass | numpy ms native ms torch ms | native GFLOP/s"
        " | numpy/native torch/native | peak extra MB: numpy native torch | out MB"
    )
    for row in rows:
        print(format_row(row, memory))


def save(rows, memory, folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "attention.json").write_text(json.dumps(dict(rows=rows, memory=memory), indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, kind in zip(axes, ("fwd", "fwd+bwd")):
        sel = [
            r for r in rows if r["threads"] == 1 and r["dtype"] == "float32" and r["kind"] == kind
        ]
        labels = [
            f"N={r['shape'][2]} B={r['shape'][0]} H={r['shape'][1]}{' causal' if r['causal'] else ''}"
            for r in sel
        ]
        x = np.arange(len(sel))
        for j, impl in enumerate(IMPLS):
            ms = [r["cpu_ms"].get(impl, np.nan) for r in sel]
            ax.bar(x + (j - 1) * 0.27, ms, 0.27, label=impl)
        ax.set_yscale("log")
        ax.set_xticks(x, labels, rotation=60, fontsize=8)
        ax.set_ylabel("ms (median CPU time, 1 thread, float32)")
        ax.set_title(f"attention {kind}")
        ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "attention.png", dpi=110)
    print(f"saved {folder / 'attention.png'} and {folder / 'attention.json'}")


if __name__ == "__main__":
    main()
