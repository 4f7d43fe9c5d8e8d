"""How much does numtrans's autograd cost? Forward + backward of an MLP, numtrans vs PyTorch eager.

The model: 4 linear layers of width 512 with ReLU between them, batch 256, float32, and a
mean-squared-error loss. It is run three ways, interleaved in one process with the same number
of BLAS threads:

* numtrans     ``F.linear`` + ``F.relu`` + ``F.mse_loss``, ``loss.backward()``
* numpy        the same forward and hand-written backward in plain NumPy: the floor for numtrans,
               since both call the same BLAS; the gap to it is the autograd's own overhead
* torch        PyTorch eager on the CPU (skipped if torch is not installed)

and the medians of many timed runs are printed side by side. The target is numtrans within
1.5x of PyTorch.

    python benchmarks/autograd_overhead.py [--threads N] [--runs 50] [--profile]

On some machines OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set for old OpenBLAS builds and slow a
current NumPy; to compare fairly, unset both in this command only:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/autograd_overhead.py
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="BLAS/torch threads")
    p.add_argument("--runs", type=int, default=50, help="timed runs per implementation")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--profile", action="store_true", help="cProfile numtrans's runs afterwards")
    return p.parse_args(argv)


ARGS = parse_args()
# Thread counts must be fixed before NumPy loads its BLAS (threadpoolctl, if present, also
# limits it at run time below).
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

import numtrans as nt  # noqa: E402
import numtrans.functional as F  # noqa: E402

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None
try:
    import torch
except ImportError:
    torch = None
if ARGS.no_torch:
    torch = None


# ----------------------------------------------------------------------------- the three versions
def make_data(width, batch, layers, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width)).astype(np.float32)
    y = rng.standard_normal((batch, width)).astype(np.float32)
    bound = 1 / np.sqrt(width)
    params = []
    for _ in range(layers):
        w = rng.uniform(-bound, bound, (width, width)).astype(np.float32)
        b = rng.uniform(-bound, bound, width).astype(np.float32)
        params += [w, b]
    return x, y, params


def numtrans_step(x, y, params):
    """One forward + backward; returns (forward seconds, backward seconds)."""
    for p in params:
        p.grad = None
    t0 = time.perf_counter()
    h = x
    n = len(params) // 2
    for i in range(n):
        h = F.linear(h, params[2 * i], params[2 * i + 1])
        if i < n - 1:
            h = F.relu(h)
    loss = F.mse_loss(h, y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def numpy_step(x, y, params, grads):
    """The same computation written by hand (what an ideal autograd would execute)."""
    t0 = time.perf_counter()
    n = len(params) // 2
    acts, h = [x], x
    for i in range(n):
        h = h @ params[2 * i].T
        h += params[2 * i + 1]
        if i < n - 1:
            h = np.maximum(h, 0)
        acts.append(h)
    diff = h - y
    _ = float(np.mean(diff * diff))
    t1 = time.perf_counter()
    g = diff * np.float32(2 / diff.size)
    for i in reversed(range(n)):
        if i < n - 1:
            g = g * (acts[i + 1] > 0)
        grads[2 * i] = g.T @ acts[i]
        grads[2 * i + 1] = g.sum(axis=0)
        if i > 0:
            g = g @ params[2 * i]
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def torch_step(x, y, params):
    for p in params:
        p.grad = None
    t0 = time.perf_counter()
    h = x
    n = len(params) // 2
    for i in range(n):
        h = torch.nn.functional.linear(h, params[2 * i], params[2 * i + 1])
        if i < n - 1:
            h = torch.relu(h)
    loss = torch.nn.functional.mse_loss(h, y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


# ----------------------------------------------------------------------------- reporting
def blas_report() -> list[str]:
    lines = []
    if threadpoolctl is not None:
        for info in threadpoolctl.threadpool_info():
            if info.get("user_api") != "blas":
                continue
            lines.append(
                f"  NumPy BLAS: {info.get('internal_api')} {info.get('version')}, kernel "
                f"{info.get('architecture', '?')}, {info.get('num_threads')} threads "
                f"({os.path.basename(info.get('filepath', ''))})"
            )
    else:  # numpy.show_config(): the BLAS NumPy was built against (no run-time kernel name)
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            desc = ", ".join(
                f"{k}={blas.get(k)}" for k in ("name", "version", "openblas configuration")
            )
        except Exception:  # older NumPy: only the printed form exists
            desc = "see numpy.show_config()"
        lines.append(f"  NumPy BLAS (threadpoolctl not installed): {desc}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        lines.append(f"  {var}={os.environ.get(var, '(unset)')}")
    if torch is not None:
        import re

        blas = re.findall(r"BLAS_INFO=\w+", torch.__config__.show())
        cap = torch.backends.cpu.get_cpu_capability()
        lines.append(
            f"  torch {torch.__version__}: {', '.join(blas) or 'BLAS ?'}, CPU capability {cap}, "
            f"{torch.get_num_threads()} intra-op threads"
        )
    return lines


def main() -> int:
    args = ARGS
    limiter = None
    if threadpoolctl is not None:
        limiter = threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    if torch is not None:
        torch.set_num_threads(args.threads)

    x, y, params = make_data(args.width, args.batch, args.layers)
    nt_x, nt_y = nt.Tensor(x), nt.Tensor(y)
    nt_params = [nt.Tensor(p.copy(), requires_grad=True) for p in params]
    np_grads = [None] * len(params)
    runners = {
        "numtrans": lambda: numtrans_step(nt_x, nt_y, nt_params),
        "numpy (hand-written)": lambda: numpy_step(x, y, params, np_grads),
    }
    if torch is not None:
        t_x, t_y = torch.from_numpy(x), torch.from_numpy(y)
        t_params = [torch.tensor(p, requires_grad=True) for p in params]
        runners["torch eager"] = lambda: torch_step(t_x, t_y, t_params)

    # the three compute the same gradients
    numtrans_step(nt_x, nt_y, nt_params)
    numpy_step(x, y, params, np_grads)
    for p, g in zip(nt_params, np_grads):
        np.testing.assert_allclose(p.grad, g, rtol=2e-3, atol=1e-5)
    if torch is not None:
        torch_step(t_x, t_y, t_params)
        for p, tp in zip(nt_params, t_params):
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=2e-3, atol=1e-5)

    for _ in range(args.warmup):
        for run in runners.values():
            run()
    times = {name: ([], []) for name in runners}
    for _ in range(args.runs):  # interleaved, so load changes hit every column alike
        for name, run in runners.items():
            fwd, bwd = run()
            times[name][0].append(fwd)
            times[name][1].append(bwd)

    print(
        f"MLP {args.layers} x Linear({args.width}, {args.width}) + ReLU, batch {args.batch}, "
        f"float32, MSE loss; median of {args.runs} runs after {args.warmup} warm-up"
    )
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {args.threads} threads:")
    print("\n".join(blas_report()))
    print()
    names = list(runners)
    header = f"{'':<18}" + "".join(f"{n:>22}" for n in names)
    if torch is not None:
        header += f"{'numtrans / torch':>18}"
    header += f"{'numtrans / numpy':>18}"
    print(header)
    print("-" * len(header))
    for label, pick in [
        ("forward (ms)", lambda t: t[0]),
        ("backward (ms)", lambda t: t[1]),
        ("fwd + bwd (ms)", lambda t: [a + b for a, b in zip(t[0], t[1])]),
    ]:
        med = {n: statistics.median(pick(times[n])) * 1e3 for n in names}
        row = f"{label:<18}" + "".join(f"{med[n]:>22.2f}" for n in names)
        if torch is not None:
            row += f"{med['numtrans'] / med['torch eager']:>17.2f}x"
        row += f"{med['numtrans'] / med['numpy (hand-written)']:>17.2f}x"
        print(row)
    if torch is not None:
        total = {n: statistics.median([a + b for a, b in zip(*times[n])]) for n in names}
        ratio = total["numtrans"] / total["torch eager"]
        verdict = "meets" if ratio <= 1.5 else "MISSES"
        print(f"\nnumtrans / torch = {ratio:.2f}x: {verdict} the 1.5x target")

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.runs):
            numtrans_step(nt_x, nt_y, nt_params)
        prof.disable()
        print(f"\ncProfile of {args.runs} numtrans steps (top 15 by own time):")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    if limiter is not None:
        limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    sys.exit(main())
