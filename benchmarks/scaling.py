"""How a GPT training step's cost grows with the work: width, depth and block size.

The model is ``train_step.py``'s (nanoGPT's: pre-LayerNorm blocks, exact GELU, tied head,
AdamW, float32, dropout 0), grown along one axis at a time from the base point
4 layers x 128 wide, block 128, head size 32 (so ``n_head = n_embd / 32``):

    width       n_embd 64 .. 512       (n_layer 4, block 128)
    depth       n_layer 2 .. 12        (n_embd 128, block 128)
    block size  block 64 .. 1024       (n_layer 4, n_embd 128)

Every step sees the same number of tokens (``--tokens``, batch = tokens / block), so
tokens/s compares like with like. FLOPs come from the project's own counter,
``numtrans.models.counting.gpt_flops_per_token`` (6 N + 12 L T C per token, N the
non-embedding parameters, the causal mask's skipped half counted as work, as nanoGPT does):

    achieved GFLOP/s = FLOPs per token x tokens per step / step time

Reading the log-log plot: along width, 6 N grows as C^2 and the GEMMs dominate, so GFLOP/s
climbs towards the BLAS peak; along block size the attention term 12 L T C grows per token
(T^2 per sequence) and the ``attn`` column says what share of the FLOPs it is; at the small
end of every axis a step is mostly per-op Python/NumPy overhead (fixed per op, not per FLOP),
which shows as low GFLOP/s.

Each implementation runs in its own subprocess per axis (numtrans, then PyTorch eager when
installed, alternating axis by axis; without torch its columns read "-"), at ``--threads``
threads, ``--warmup`` untimed steps and the median of ``--steps`` timed ones per point. The
process's CPU time is printed beside the wall time: on a shared machine it is the steadier.
Both workers keep freed memory mapped (``numtrans.allocator.keep_freed_memory``, as numtrans's
trainer does and ``train_step.py`` does for both by default).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/scaling.py --threads 1 \\
        [--quick] [--plot scaling.png] [--sweeps width,depth,block] [--dry-run] [--no-torch]

``--quick`` (under 2 minutes on an idle core): fewer points, 1024 tokens a step, 1 + 2 steps.
``--dry-run``: print the plan (parameters, FLOPs, attention share) and time one tiny step
of the smallest point per implementation, to check that the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import train_step as ts  # the same models, steps and BLAS pinning (benchmarks/ is sys.path[0])

BASE = {"n_layer": 4, "n_embd": 128, "block_size": 128, "vocab_size": 65}
HEAD_SIZE = 32
FULL = {"width": [64, 128, 256, 384, 512], "depth": [2, 4, 6, 8, 12],
        "block": [64, 128, 256, 512, 1024]}  # fmt: skip
QUICK = {"width": [64, 128, 256, 512], "depth": [2, 4, 12], "block": [64, 256, 1024]}
AXIS_KEY = {"width": "n_embd", "depth": "n_layer", "block": "block_size"}
IMPLS = ("numtrans", "torch")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="BLAS / torch threads (default 1)")
    p.add_argument("--quick", action="store_true", help="fewer points and steps (< 2 min)")
    p.add_argument("--dry-run", action="store_true", help="plan + one tiny timed step")
    p.add_argument("--sweeps", default="width,depth,block", help="comma list of the axes")
    p.add_argument("--tokens", type=int, default=None, help="tokens per step (4096; quick 1024)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per point (5; quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (2; quick 1)")
    p.add_argument("--plot", default=None, help="write the log-log plot (PNG) here")
    p.add_argument("--no-torch", action="store_true", help="numtrans only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--points", default=None, help=argparse.SUPPRESS)  # (worker side, JSON)
    args = p.parse_args(argv)
    sweeps = [s.strip() for s in args.sweeps.split(",") if s.strip()]
    unknown = [s for s in sweeps if s not in FULL]
    if unknown or not sweeps:
        p.error(f"--sweeps: unknown axis {unknown or args.sweeps!r}; choose from width,depth,block")
    args.sweeps = sweeps
    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    quick = args.quick or args.dry_run
    args.tokens = args.tokens or (1024 if quick else 4096)
    args.steps = args.steps or (2 if quick else 5)
    args.warmup = (1 if quick else 2) if args.warmup is None else args.warmup
    if args.tokens < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--tokens and --steps must be >= 1, --warmup >= 0")
    return args


def plan(args) -> list[dict]:
    """One point per (axis, value): the model sizes and the batch for ``args.tokens``."""
    grid = QUICK if args.quick or args.dry_run else FULL
    points = []
    for axis in args.sweeps:
        for value in grid[axis]:
            model = dict(BASE, **{AXIS_KEY[axis]: value})
            model["n_head"] = max(1, model["n_embd"] // HEAD_SIZE)
            batch = max(1, args.tokens // model["block_size"])
            points.append({"axis": axis, "value": value, "model": model, "batch": batch})
    return points


def flops(model: dict) -> tuple[int, int, float]:
    """(FLOPs per training token, non-embedding parameters, attention's share of the FLOPs)."""
    from numtrans.models.counting import gpt_flops_per_token, gpt_num_params
    from numtrans.models.gpt import GPTConfig

    cfg = GPTConfig(**model, bias=True, tie_weights=True)
    per_token = gpt_flops_per_token(cfg)
    attention = 12 * model["n_layer"] * model["block_size"] * model["n_embd"]
    return per_token, gpt_num_params(cfg, non_embedding=True), attention / per_token


# ============================================================================ workers
def time_point(impl: str, point: dict, args) -> tuple[float, float]:
    """Median seconds of one training step (zero_grad + forward + backward + AdamW): wall
    time, and the process's CPU time (on a busy machine the less scattered of the two)."""
    import numpy as np

    model_cfg, B, T = point["model"], point["batch"], point["model"]["block_size"]
    if impl == "numtrans":
        model, opt = ts.build_numtrans(args.seed, **model_cfg)
        step = ts.numtrans_step
    else:
        model, opt = ts.build_torch(args.seed, model_cfg)
        model.train()
        step = ts.torch_step
    rng = np.random.default_rng(args.seed + 1)
    wall, cpu = [], []
    for i in range(args.warmup + args.steps):
        tokens = rng.integers(0, model_cfg["vocab_size"], size=(B, T + 1))
        c0 = time.process_time()
        _, f, b, o = step(model, opt, tokens[:, :-1].copy(), tokens[:, 1:].copy())
        if i >= args.warmup:
            wall.append(f + b + o)
            cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def worker(args) -> None:
    if args.worker == "torch":
        import torch

        torch.set_num_threads(args.threads)
    else:  # numtrans first, as the `numtrans` command imports it (train_step.py says why)
        import numtrans  # noqa: F401
    ts.apply_malloc(argparse.Namespace(malloc="keep"))  # both workers, as in train_step.py
    limiter = ts.limit_blas(args.threads)
    for point in json.loads(args.points):
        wall, cpu = time_point(args.worker, point, args)
        ts.emit({"key": [point["axis"], point["value"]], "s": [wall, cpu]})
    if limiter is not None:
        limiter.restore_original_limits()


def run_worker(impl: str, points: list[dict], args) -> dict:
    """{(axis, value): (wall, CPU) seconds per step} from a subprocess running ``impl``."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--points",
           json.dumps(points), "--threads", str(args.threads), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--seed", str(args.seed)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"scaling: the {impl} worker failed with exit code {proc.returncode}")
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith(ts.RESULT_TAG):
            r = json.loads(line[len(ts.RESULT_TAG) :])
            out[tuple(r["key"])] = tuple(r["s"])
    return out


# ============================================================================ report
def rows_for(points, times) -> list[dict]:
    rows = []
    for p in points:
        per_token, n, attn = flops(p["model"])
        tokens = p["batch"] * p["model"]["block_size"]
        row = dict(p, params=n, attn_share=attn, gflop=per_token * tokens / 1e9, tokens=tokens)
        for impl in IMPLS:
            t = times.get(impl, {}).get((p["axis"], p["value"]))
            if t is None:
                row[impl] = None
                continue
            s, cpu = t
            row[impl] = {"ms": s * 1e3, "cpu_ms": cpu * 1e3, "tok_s": tokens / s,
                         "gflops": per_token * tokens / s / 1e9}  # fmt: skip
        rows.append(row)
    return rows


def print_rows(rows) -> None:
    def cell(r, impl, key, fmt):
        return "-" if r[impl] is None else fmt.format(r[impl][key])

    head = ("| axis  | value | L  | C   | T    | B   | params | GFLOP/step | attn | "
            "numtrans ms | torch ms | nt/torch | nt CPU ms | torch CPU ms | nt/torch CPU | "
            "numtrans tok/s | torch tok/s | numtrans GFLOP/s | torch GFLOP/s |")  # fmt: skip
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        m = r["model"]
        ratio = cpu_ratio = "-"
        if r["numtrans"] and r["torch"]:
            ratio = f"{r['numtrans']['ms'] / r['torch']['ms']:.2f}x"
            cpu_ratio = f"{r['numtrans']['cpu_ms'] / r['torch']['cpu_ms']:.2f}x"
        cells = [r["axis"], r["value"], m["n_layer"], m["n_embd"], m["block_size"], r["batch"],
                 f"{r['params'] / 1e6:.2f}M", f"{r['gflop']:.2f}", f"{r['attn_share']:.0%}",
                 cell(r, "numtrans", "ms", "{:.1f}"), cell(r, "torch", "ms", "{:.1f}"), ratio,
                 cell(r, "numtrans", "cpu_ms", "{:.1f}"), cell(r, "torch", "cpu_ms", "{:.1f}"),
                 cpu_ratio,
                 cell(r, "numtrans", "tok_s", "{:,.0f}"), cell(r, "torch", "tok_s", "{:,.0f}"),
                 cell(r, "numtrans", "gflops", "{:.1f}"), cell(r, "torch", "gflops", "{:.1f}")]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")


def plot(rows, path: str, title: str) -> bool:
    """Log-log: ms/step (top) and achieved GFLOP/s (bottom) against each swept size."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    axes_used = [a for a in FULL if any(r["axis"] == a for r in rows)]
    fig = Figure(figsize=(4.2 * len(axes_used), 7))
    FigureCanvasAgg(fig)
    grid = fig.subplots(2, len(axes_used), squeeze=False)
    labels = {"width": "n_embd (C)", "depth": "n_layer (L)", "block": "block size (T)"}
    for j, axis in enumerate(axes_used):
        sel = [r for r in rows if r["axis"] == axis]
        xs = [r["value"] for r in sel]
        for impl, style in (("numtrans", "o-"), ("torch", "s--")):
            have = [(x, r[impl]) for x, r in zip(xs, sel) if r[impl] is not None]
            if not have:
                continue
            label = "numtrans" if impl == "numtrans" else "PyTorch eager"
            grid[0][j].plot([x for x, _ in have], [v["ms"] for _, v in have], style, label=label)
            grid[1][j].plot(
                [x for x, _ in have], [v["gflops"] for _, v in have], style, label=label
            )
        for i, ylabel in enumerate(("ms / step", "achieved GFLOP/s")):
            ax = grid[i][j]
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel(labels[axis])
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        grid[0][j].set_title(f"{axis} sweep")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)  # atomically: a half-written plot never sits at `path`
    return True


def cpu_name() -> str:
    """The CPU's model name, family/model and widest vector unit (Linux /proc/cpuinfo)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown CPU"
    flags = fields.get("flags", "").split()
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return (f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')} model "
            f"{fields.get('model', '?')}, {simd})")  # fmt: skip


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.plot and not os.path.isdir(os.path.dirname(os.path.abspath(args.plot))):
        raise SystemExit(f"scaling: --plot {args.plot}: its folder does not exist")
    points = plan(args)
    impls = ["numtrans"]
    try:
        import torch  # noqa: F401  (only to know whether it is there; the worker imports it)

        impls += [] if args.no_torch else ["torch"]
    except ImportError:
        print("PyTorch is not installed: numtrans rows only")
    timed = points
    if args.dry_run:  # the plan, then one tiny step of the smallest point
        timed = [min(points, key=lambda p: flops(p["model"])[0] * args.tokens)]
        timed = [dict(timed[0], batch=1, model=dict(timed[0]["model"], block_size=16))]
        args.warmup, args.steps = 0, 1
    load_before, t0 = os.getloadavg(), time.perf_counter()
    times = {impl: {} for impl in impls}
    for axis in args.sweeps:  # numtrans and torch alternate per axis: load drifts hit both
        for impl in impls:
            times[impl].update(run_worker(impl, [p for p in timed if p["axis"] == axis], args))
    load_after = os.getloadavg()
    title = (
        f"GPT training step, float32, {args.threads} thread(s), {args.tokens} tokens/step\n"
        f"{cpu_name()}, {ts.blas_info().get('architecture', '?')} BLAS kernel\n"
        f"load {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(title)
    print(f"median of {args.steps} timed steps after {args.warmup} warm-up, per point")
    print_rows(rows_for(points, times) if not args.dry_run else rows_for(points, {}))
    if args.dry_run:
        print("\ndry run: the plan above, and one step at block 16, batch 1 of the smallest model:")
        print_rows(rows_for(timed, times))
    rows = rows_for(timed, times)
    if args.plot:
        if plot(rows, args.plot, title):
            print(f"\nwrote {args.plot}")
        else:
            print("\nmatplotlib is not installed: no plot")
    print(f"(wall time {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
