"""One GPT training step, numtrans versus PyTorch eager on the CPU.

The same model in both (nanoGPT's architecture, the anchor in the project's perf notes):
4 layers, 4 heads, 128 wide, block 128, vocabulary 65, batch 32, bias everywhere, dropout 0,
pre-LayerNorm blocks, qkv Linear(C, 3C) + Linear(C, C), MLP C -> 4C -> C with the exact (erf)
GELU, a final LayerNorm and an lm_head tied to the token embedding; causal attention
(``F.scaled_dot_product_attention(is_causal=True)`` in PyTorch). AdamW(lr=1e-3,
betas=(0.9, 0.99), eps=1e-8), weight decay 0.1 on parameters with >= 2 dims and 0 on the rest.
Random uniform tokens, a new batch every step (made outside the timed region).

One step = ``zero_grad`` + forward + loss + ``backward`` + ``optimizer.step()``.

Method: each implementation runs in its own subprocess (so each has its own peak RSS and neither
warms the other's caches), numtrans and torch alternately for ``--rounds`` rounds, each process
doing ``--warmup`` untimed steps and then ``--steps`` timed ones. The table gives the median
over all timed steps of all rounds. Both processes get the same thread settings:
OMP/OPENBLAS/MKL_NUM_THREADS in their environment before NumPy or torch load,
``threadpoolctl.threadpool_limits`` for NumPy's BLAS, ``torch.set_num_threads`` for torch.
A separate short process first checks that both models compute the same loss and gradients
from the same weights.

    python benchmarks/train_step.py [--threads 2] [--steps 10] [--rounds 2] [--profile] [--analyze]
                                    [--backend numpy]

``--profile`` adds cProfile of numtrans steps (top 25 by cumulative and by own time, and the time
per autograd op); ``--analyze`` adds a GEMM-only floor for the same step in plain NumPy and a
dispatch-overhead probe (the same graph at tiny sizes). numtrans's attention runs where
``backend="auto"`` sends it (the fused C++ kernel when it is built, else NumPy);
``--backend numpy`` forces the NumPy reference path (``NUMTRANS_BACKEND`` for the workers).
On a busy machine, ``--threads 1`` gives steadier numbers: threads that spin-wait for a busy
core lose whole scheduler time slices.

Both workers first call ``numtrans.allocator.keep_freed_memory()`` (``--malloc default`` skips
it), as numtrans's trainer does: without it every step faults its ~180 MiB of fresh pages in
again (~30,000 faults, 15-25 % of a numtrans step on the AVX2 EPYC). The numtrans worker imports
numtrans before NumPy, as the ``numtrans`` command does, so that its thread-pool defaults
(``numtrans/_thread_env.py``: sleeping OpenMP and OpenBLAS threads) apply; torch's worker runs
with torch's own.

The environment may set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (an AVX2 kernel for old OpenBLAS
builds); a benchmark may unset both in its own command, tests and CI never do:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_step.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

MODEL = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 128, "vocab_size": 65}
BATCH = 32
OPTIM = {"lr": 1e-3, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1}
# Issue 19's targets for numtrans / torch eager: 0.6x where the CPU has AVX-512, 0.9x on AVX2 only;
# and the step within 2.0x of its own GEMM floor (--analyze).
TARGET_RATIO = {"avx512": 0.6, "avx2": 0.9}
TARGET_FLOOR_RATIO = 2.0


def cpu_isa() -> str:
    """'avx512' or 'avx2' (or 'other') from /proc/cpuinfo's flags, and the CPU's model name."""
    flags, name = "", "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags") and not flags:
                    flags = line
                elif line.startswith("model name") and name == "?":
                    name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    isa = "avx512" if " avx512f" in flags else "avx2" if " avx2" in flags else "other"
    return isa, name


RESULT_TAG = "@@result "


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads (default 2)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first, per process")
    p.add_argument("--rounds", type=int, default=2, help="processes per implementation")
    p.add_argument("--profile", action="store_true", help="cProfile numtrans steps")
    p.add_argument("--profile-steps", type=int, default=10)
    p.add_argument("--analyze", action="store_true", help="GEMM floor + overhead probe")
    p.add_argument("--no-torch", action="store_true", help="numtrans only")
    p.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="also run numtrans with gradient_checkpointing_enable(): memory saved, time it costs",
    )
    p.add_argument("--ckpt", action="store_true", help=argparse.SUPPRESS)  # (worker side)
    p.add_argument(
        "--backend",
        choices=["auto", "numpy", "cpu"],
        default=None,
        help="numtrans attention backend (default: NUMTRANS_BACKEND or auto)",
    )
    p.add_argument(
        "--malloc",
        choices=["keep", "default"],
        default="keep",
        help="keep: both workers call numtrans.allocator.keep_freed_memory() first, as "
        "numtrans's trainer does (default); default: glibc's own settings",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", choices=["numtrans", "torch", "check"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ============================================================================ shared helpers
def rss_mib() -> float:
    """Current resident set size (VmRSS) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def limit_blas(threads: int):
    """Limit NumPy's BLAS with threadpoolctl when installed (the environment is set anyway)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_limits(limits=threads, user_api="blas")


def blas_info() -> dict:
    """Which BLAS NumPy runs (threadpoolctl), or numpy's build config as a fallback."""
    try:
        import threadpoolctl
    except ImportError:
        import numpy as np

        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {"internal_api": cfg.get("name"), "version": cfg.get("version"), "architecture": "?"}
    for info in threadpoolctl.threadpool_info():
        if info.get("user_api") == "blas":
            keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
            return {k: info.get(k) for k in keys} | {"file": os.path.basename(info["filepath"])}
    return {}


def make_batcher(seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)

    def batch():
        tokens = rng.integers(0, MODEL["vocab_size"], size=(BATCH, MODEL["block_size"] + 1))
        return tokens[:, :-1].copy(), tokens[:, 1:].copy()

    return batch


def emit(result: dict) -> None:
    print(RESULT_TAG + json.dumps(result), flush=True)


# ============================================================================ numtrans
def build_numtrans(seed: int, **overrides):
    import numtrans as nt
    from numtrans.models.gpt import GPT, GPTConfig
    from numtrans.optim import AdamW, param_groups_for_weight_decay

    nt.manual_seed(seed)
    cfg = dict(MODEL, dropout=0.0, bias=True, tie_weights=True, gelu_approximate="none")
    model = GPT(GPTConfig(**(cfg | overrides)))
    model.train()
    groups = param_groups_for_weight_decay(model.named_parameters(), OPTIM["weight_decay"])
    opt = AdamW(groups, lr=OPTIM["lr"], betas=OPTIM["betas"], eps=OPTIM["eps"])
    return model, opt


def numtrans_step(model, opt, x, y):
    """One training step; returns (loss, zero_grad+forward s, backward s, optimizer s)."""
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    t3 = time.perf_counter()
    return float(loss.item()), t1 - t0, t2 - t1, t3 - t2


def run_steps(step, batch, warmup: int, steps: int) -> dict:
    for _ in range(warmup):
        step(*batch())
    fwd, bwd, opt, losses, cpu = [], [], [], [], []
    faults0 = minor_faults()
    for _ in range(steps):
        x, y = batch()
        c0 = time.process_time()  # CPU time: on a busy machine, less scattered than wall time
        loss, f, b, o = step(x, y)
        cpu.append(time.process_time() - c0)
        fwd.append(f)
        bwd.append(b)
        opt.append(o)
        losses.append(loss)
    faults = (minor_faults() - faults0) / max(steps, 1)
    return {"fwd": fwd, "bwd": bwd, "opt": opt, "loss": losses, "cpu": cpu,
            "minflt_per_step": faults}  # fmt: skip


def worker_numtrans(args) -> None:
    # numtrans first, as the `numtrans` command imports it: its thread-pool defaults
    # (numtrans/_thread_env.py) must be in the environment before NumPy's OpenBLAS loads.
    import numtrans  # noqa: F401, I001

    import numpy as np
    from numtrans.functional import _dispatch

    limiter = limit_blas(args.threads)
    apply_malloc(args)

    rss_import = rss_mib()
    model, opt = build_numtrans(args.seed)
    if args.ckpt:
        model.gradient_checkpointing_enable()
    batch = make_batcher(args.seed + 1)
    step = lambda x, y: numtrans_step(model, opt, x, y)  # noqa: E731
    result = run_steps(step, batch, args.warmup, args.steps)
    result["peak_rss_mib"] = peak_rss_mib()
    result["rss_after_import_mib"] = rss_import

    # Peak of NumPy's own allocations during one step (NumPy reports them to tracemalloc).
    import tracemalloc

    x, y = batch()
    tracemalloc.start()
    numtrans_step(model, opt, x, y)
    result["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    # and what the backward alone adds on top of the forward's saved activations
    opt.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    tracemalloc.reset_peak()
    held = tracemalloc.get_traced_memory()[0]
    loss.backward()
    result["traced_bwd_peak_mib"] = (tracemalloc.get_traced_memory()[1] - held) / 2**20
    tracemalloc.stop()

    result["blas"] = blas_info()
    result["attention_backend"] = _dispatch.resolve_backend("auto", 0.0)
    result["numpy"] = np.__version__
    result["params"] = model.num_params()
    if args.analyze:
        result["analysis"] = analyze(model, opt, batch, args)
    if args.profile:
        profile(model, opt, batch, args)
    emit(result)
    if limiter is not None:
        limiter.restore_original_limits()


# ---------------------------------------------------------------------------- profile
def profile(model, opt, batch, args) -> None:
    import cProfile
    import pstats

    for _ in range(2):
        numtrans_step(model, opt, *batch())
    batches = [batch() for _ in range(args.profile_steps)]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for x, y in batches:
        numtrans_step(model, opt, x, y)
    prof.disable()
    wall = (time.perf_counter() - t0) / args.profile_steps * 1e3
    n = args.profile_steps
    print(f"\n==== cProfile of {n} numtrans steps ({wall:.1f} ms/step under the profiler)")
    stats = pstats.Stats(prof, stream=sys.stdout).strip_dirs()
    print("\n---- top 25 by cumulative time")
    stats.sort_stats("cumulative").print_stats(25)
    print("---- top 25 by own (total) time")
    stats.sort_stats("tottime").print_stats(25)
    op_table(pstats.Stats(prof).stats, n)


def op_table(raw: dict, n_steps: int) -> None:
    """Inclusive time of every numtrans op (forward function or backward closure) per step.

    numpy's operators (``a @ b``, ``a * b``) are not separate cProfile entries: their time is
    inside the op that calls them, so these rows are where the step's time actually goes.
    """
    rows = []
    for (path, line, name), (_cc, ncalls, _tt, ct, _callers) in raw.items():
        norm = path.replace(os.sep, "/")
        if "/numtrans/" not in norm:
            continue
        rel = norm.split("/numtrans/", 1)[1]
        inside_op = rel.startswith(("ops/", "functional/layers", "functional/activations"))
        inside_op |= rel.startswith(("functional/losses", "optim/adam", "autograd/engine"))
        if not inside_op or name.startswith("_") or name in {"as_tensor", "make_result"}:
            continue
        if name in {"unbroadcast", "split"}:  # helpers whose time is counted in callers
            continue
        rows.append((ct / n_steps * 1e3, ncalls / n_steps, f"{rel}:{line} {name}"))
    rows.sort(reverse=True)
    print(f"---- numtrans ops, inclusive ms per step (cProfile; {n_steps} steps)")
    print(f"{'ms/step':>9} {'calls/step':>11}  op")
    for ms, calls, where in rows[:30]:
        print(f"{ms:9.2f} {calls:11.1f}  {where}")


# ---------------------------------------------------------------------------- analysis
def gemm_floor(reps: int = 5) -> dict:
    """All GEMMs of one forward + backward of the benchmark model, in plain NumPy with
    preallocated outputs: no elementwise work, no allocation, no autograd."""
    import numpy as np

    rng = np.random.default_rng(0)
    B, T, C, H, V, L = (BATCH, MODEL["block_size"], MODEL["n_embd"], MODEL["n_head"],
                        MODEL["vocab_size"], MODEL["n_layer"])  # fmt: skip
    M, hs = B * T, C // H

    def r(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    jobs = []  # (name, a, b, out)

    def gemm(name, m, k, n, batch=None):
        lead = () if batch is None else (batch,)
        jobs.append((name, r(*lead, m, k), r(*lead, k, n), np.empty(lead + (m, n), np.float32)))

    for name, fin, fout in [("qkv", C, 3 * C), ("proj", C, C), ("fc", C, 4 * C), ("fc2", 4 * C, C)]:
        gemm(f"{name}.fwd", M, fin, fout)
        gemm(f"{name}.dX", M, fout, fin)
        gemm(f"{name}.dW", fout, M, fin)
    for name, m, k, n in [("S=QK^T", T, hs, T), ("O=PV", T, T, hs), ("dV=P^T dO", T, T, hs),
                          ("dP=dO V^T", T, hs, T), ("dQ=dS K", T, T, hs), ("dK=dS^T Q", T, T, hs)]:  # fmt: skip
        gemm(f"attn.{name}", m, k, n, batch=B * H)
    per_layer = len(jobs)
    gemm("head.fwd", M, C, V)
    gemm("head.dX", M, V, C)
    gemm("head.dW", V, M, C)

    def once():
        times = {}
        for i, (name, a, b, out) in enumerate(jobs):
            t0 = time.perf_counter()
            for _ in range(L if i < per_layer else 1):
                np.matmul(a, b, out=out)
            times[name] = time.perf_counter() - t0
        return times

    once()
    runs = [once() for _ in range(reps)]
    per_gemm = {k: statistics.median(run[k] for run in runs) * 1e3 for k in runs[0]}
    total = statistics.median(sum(run.values()) for run in runs) * 1e3
    flops = sum(2 * a.shape[-2] * a.shape[-1] * b.shape[-1] * (a.shape[0] if a.ndim == 3 else 1)
                * (L if i < per_layer else 1) for i, (_, a, b, _) in enumerate(jobs))  # fmt: skip
    return {"ms": total, "gflop": flops / 1e9, "per_gemm_ms": per_gemm}


def analyze(model, opt, batch, args) -> dict:
    import numpy as np

    from numtrans.autograd.engine import topological_order

    x, y = batch()
    _, loss = model(x, y)
    n_nodes = len(topological_order(loss))
    loss.backward()
    opt.zero_grad()

    # The same graph at tiny sizes: what remains is Python + per-call NumPy overhead.
    tiny, tiny_opt = build_numtrans(args.seed, n_embd=16, block_size=8)
    xt = np.zeros((1, 8), dtype=np.int64)
    for _ in range(5):
        numtrans_step(tiny, tiny_opt, xt, xt)
    reps = [numtrans_step(tiny, tiny_opt, xt, xt)[1:] for _ in range(30)]
    overhead = {
        "fwd": statistics.median(r[0] for r in reps) * 1e3,
        "bwd": statistics.median(r[1] for r in reps) * 1e3,
        "opt": statistics.median(r[2] for r in reps) * 1e3,
    }
    return {"graph_nodes": n_nodes, "gemm_floor": gemm_floor(), "tiny_step_ms": overhead}


# ============================================================================ torch
def build_torch(seed: int, model: dict | None = None):
    """nanoGPT's GPT in PyTorch, written out compactly (parameter names match numtrans's);
    ``model`` (keys as ``MODEL``) changes the sizes (``scaling.py`` sweeps them)."""
    import math

    import torch
    from torch import nn
    from torch.nn import functional as F

    M = MODEL if model is None else model
    C, H, L = M["n_embd"], M["n_head"], M["n_layer"]

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc, self.gelu, self.c_proj = nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C)

        def forward(self, x):
            return self.c_proj(self.gelu(self.c_fc(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(C), CausalSelfAttention()
            self.ln_2, self.mlp = nn.LayerNorm(C), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict(
                {
                    "wte": nn.Embedding(M["vocab_size"], C),
                    "wpe": nn.Embedding(M["block_size"], C),
                    "h": nn.ModuleList([Block() for _ in range(L)]),
                    "ln_f": nn.LayerNorm(C),
                }
            )
            self.lm_head = nn.Linear(C, M["vocab_size"], bias=False)
            self.transformer.wte.weight = self.lm_head.weight  # tied
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    nn.init.zeros_(p)
                elif p.dim() == 2:
                    std = 0.02 / math.sqrt(2 * L) if "c_proj" in name else 0.02
                    nn.init.normal_(p, std=std)

        def forward(self, idx, targets):
            T = idx.shape[1]
            x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T))
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            return logits, F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))

    torch.manual_seed(seed)
    model = GPT()
    params = list(model.parameters())  # the tied matrix once
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": OPTIM["weight_decay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=OPTIM["lr"], betas=OPTIM["betas"], eps=OPTIM["eps"])
    return model, opt


def torch_step(model, opt, x, y):
    import torch

    x, y = torch.from_numpy(x), torch.from_numpy(y)
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    _, loss = model(x, y)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    t3 = time.perf_counter()
    return float(loss.item()), t1 - t0, t2 - t1, t3 - t2


def worker_torch(args) -> None:
    import re

    import torch

    torch.set_num_threads(args.threads)
    limiter = limit_blas(args.threads)
    apply_malloc(args)
    rss_import = rss_mib()
    model, opt = build_torch(args.seed)
    model.train()
    step = lambda x, y: torch_step(model, opt, x, y)  # noqa: E731
    result = run_steps(step, make_batcher(args.seed + 1), args.warmup, args.steps)
    result["peak_rss_mib"] = peak_rss_mib()
    result["rss_after_import_mib"] = rss_import
    blas = re.findall(r"BLAS_INFO=(\w+)", torch.__config__.show())
    result["torch"] = {
        "version": torch.__version__,
        "blas": blas[0] if blas else "?",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }
    emit(result)
    if limiter is not None:
        limiter.restore_original_limits()


# ============================================================================ same-model check
def worker_check(args) -> None:
    """Same weights, same batch: both frameworks must agree on loss, gradients and one update."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    limit_blas(args.threads)
    model, opt = build_numtrans(args.seed)
    tmodel, topt = build_torch(args.seed)
    tmodel.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    x, y = make_batcher(args.seed + 1)()
    loss, *_ = numtrans_step(model, opt, x, y)
    # the step above also updated the weights: redo torch's step from the initial weights
    tloss, *_ = torch_step(tmodel, topt, x, y)
    worst_grad = worst_param = 0.0
    tparams = dict(tmodel.named_parameters(remove_duplicate=False))
    for name, p in model.named_parameters():
        tp = tparams[name]
        g, tg = p.grad, tp.grad.numpy()
        worst_grad = max(worst_grad, float(np.abs(g - tg).max() / (np.abs(tg).max() + 1e-12)))
        # Where |g| is near eps (1e-8), Adam's first update lr * g / (|g| + eps) depends on the
        # last bits of g; compare the update only where the gradient is well above eps.
        firm = np.abs(tg) > 100 * OPTIM["eps"]
        d = np.abs(p.data - tp.detach().numpy())[firm]
        worst_param = max(worst_param, float(d.max()) if d.size else 0.0)
    emit({"loss": loss, "torch_loss": tloss, "grad_rel_err": worst_grad, "param_err": worst_param})


# ============================================================================ driver
def apply_malloc(args) -> None:
    """The same allocator settings in both workers (numtrans.allocator's docstring says why).

    The file is loaded on its own, not as ``numtrans.allocator``: importing the numtrans package
    would also set its thread-pool defaults (numtrans/_thread_env.py), and torch's worker must
    run with torch's own."""
    if args.malloc == "keep":
        import importlib.util

        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, os.pardir, "numtrans", "allocator.py")
        if not os.path.exists(path):  # benchmarks/ copied elsewhere: the installed package
            import numtrans.allocator as module
        else:
            spec = importlib.util.spec_from_file_location("_numtrans_allocator", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        module.keep_freed_memory()


def run_worker(kind: str, args, extra=()) -> tuple[dict, str]:
    env = dict(os.environ)
    if args.backend is not None:
        env["NUMTRANS_BACKEND"] = args.backend
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind]
    cmd += ["--threads", str(args.threads), "--steps", str(args.steps)]
    cmd += ["--warmup", str(args.warmup), "--seed", str(args.seed), "--malloc", args.malloc]
    cmd += list(extra)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-5000:])
        raise SystemExit(f"{kind} worker failed with exit code {proc.returncode}")
    result, other = None, []
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG) :])
        else:
            other.append(line)
    return result, "\n".join(other)


def med_ms(values) -> float:
    return statistics.median(values) * 1e3


def merge(results: list[dict]) -> dict:
    out = {k: sum((r[k] for r in results), []) for k in ("fwd", "bwd", "opt", "loss", "cpu")}
    out["total"] = [f + b + o for f, b, o in zip(out["fwd"], out["bwd"], out["opt"])]
    out["per_process_ms"] = [
        med_ms([f + b + o for f, b, o in zip(r["fwd"], r["bwd"], r["opt"])]) for r in results
    ]
    keys = ("peak_rss_mib", "rss_after_import_mib", "minflt_per_step", "traced_peak_mib")
    for key in keys + ("traced_bwd_peak_mib",):
        if key in results[0]:
            out[key] = max(r[key] for r in results)
    return out


def print_table(rows, headers) -> None:
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(fmt(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print(fmt(r))


def main() -> int:
    args = parse_args()
    if args.worker:
        {"numtrans": worker_numtrans, "torch": worker_torch, "check": worker_check}[args.worker](
            args
        )
        return 0
    try:
        import torch  # noqa: F401  (only to know whether it is there; workers import it)

        have_torch = not args.no_torch
    except ImportError:
        have_torch = False

    load_before = os.getloadavg()
    t_start = time.perf_counter()
    check = None
    if have_torch:
        check, _ = run_worker("check", args)
    nt_runs, torch_runs, ckpt_runs, nt_text = [], [], [], ""
    for _ in range(args.rounds):  # alternate, so a change in machine load hits both alike
        result, text = run_worker("numtrans", args)
        nt_runs.append(result)
        if have_torch:
            torch_runs.append(run_worker("torch", args)[0])
        if args.gradient_checkpointing:
            ckpt_runs.append(run_worker("numtrans", args, ["--ckpt"])[0])
    if args.profile or args.analyze:  # a separate process, so profiling does not bias timings
        extra = ["--profile-steps", str(args.profile_steps), "--steps", "0", "--warmup", "1"]
        extra += ["--profile"] * args.profile + ["--analyze"] * args.analyze
        analysis_run, nt_text = run_worker("numtrans", args, extra)
    load_after = os.getloadavg()

    nt_res = merge(nt_runs)
    info = nt_runs[0]
    blas = info["blas"]
    tokens = BATCH * MODEL["block_size"]
    print(
        f"GPT {MODEL['n_layer']}L/{MODEL['n_head']}H/{MODEL['n_embd']}, block "
        f"{MODEL['block_size']}, batch {BATCH}, vocab {MODEL['vocab_size']}, "
        f"{info['params']:,} parameters, float32, exact GELU, tied head, AdamW"
    )
    print(
        f"threads {args.threads}; {args.rounds} process(es) per implementation, alternating; "
        f"{args.warmup} warm-up + {args.steps} timed steps each; medians over all timed steps"
    )
    print(
        f"NumPy {info['numpy']}: BLAS {blas.get('internal_api')} {blas.get('version')}, kernel "
        f"{blas.get('architecture')}, {blas.get('num_threads')} threads ({blas.get('file', '')}); "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
        f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}"
    )
    print(f"numtrans attention backend: {info['attention_backend']}")
    if torch_runs:
        t = torch_runs[0]["torch"]
        print(
            f"torch {t['version']}: BLAS {t['blas']}, CPU capability {t['cpu_capability']}, "
            f"{t['threads']} threads, F.scaled_dot_product_attention"
        )
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"({os.cpu_count()} CPUs; other work on the machine inflates and scatters the times)"
    )
    if check is not None:
        ok = (
            abs(check["loss"] - check["torch_loss"]) < 1e-4
            and check["grad_rel_err"] < 1e-3
            and check["param_err"] < 1e-5
        )
        print(
            f"same-model check (same weights and batch): loss {check['loss']:.6f} vs torch "
            f"{check['torch_loss']:.6f}, worst gradient error {check['grad_rel_err']:.1e} "
            f"(relative to the largest), worst parameter difference after one AdamW step "
            f"(where |grad| > 100 eps) "
            f"{check['param_err']:.1e}: {'OK' if ok else 'MISMATCH'}"
        )
    print()

    cols = ["numtrans"] + (["torch eager"] if torch_runs else [])
    res = {"numtrans": nt_res}
    if torch_runs:
        res["torch eager"] = merge(torch_runs)
    if ckpt_runs:  # after torch: the ratio column stays numtrans / torch
        cols.append("numtrans, checkpointing")
        res["numtrans, checkpointing"] = merge(ckpt_runs)
    headers = [""] + cols + (["numtrans / torch"] if torch_runs else [])

    def row(label, pick, fmt="{:.1f}", ratio=True):
        """One table row: ``pick(result)`` per column, then numtrans / torch."""
        vals = [pick(res[c]) for c in cols]
        cells = [label] + [v if isinstance(v, str) else fmt.format(v) for v in vals]
        if torch_runs:
            cells.append(f"{vals[0] / vals[1]:.2f}x" if ratio and vals[1] else "")
        return cells

    def only_numtrans(r, key):
        return r[key] if key in r else "-"

    rows = [
        row("ms / step (median)", lambda r: med_ms(r["total"])),
        row("  CPU time of the process (ms / step)", lambda r: med_ms(r["cpu"])),
        row("  zero_grad + forward + loss", lambda r: med_ms(r["fwd"])),
        row("  backward", lambda r: med_ms(r["bwd"])),
        row("  optimizer step", lambda r: med_ms(r["opt"]), "{:.2f}"),
        row(
            "per-process medians (ms)",
            lambda r: ", ".join(f"{v:.0f}" for v in r["per_process_ms"]),
            ratio=False,
        ),
        row("tokens / s", lambda r: tokens / statistics.median(r["total"]), "{:,.0f}"),
        row("peak RSS (MiB)", lambda r: r["peak_rss_mib"], "{:.0f}"),
        row("  RSS after imports (MiB)", lambda r: r["rss_after_import_mib"], "{:.0f}"),
        row(
            "NumPy peak traced in one step (MiB)",
            lambda r: only_numtrans(r, "traced_peak_mib"),
            "{:.0f}",
            ratio=False,
        ),
        row(
            "  of which the backward adds (MiB)",
            lambda r: only_numtrans(r, "traced_bwd_peak_mib"),
            "{:.0f}",
            ratio=False,
        ),
        row("minor page faults / step", lambda r: r["minflt_per_step"], "{:,.0f}"),
        row("last loss (random tokens)", lambda r: r["loss"][-1], "{:.3f}", ratio=False),
    ]
    print_table(rows, headers)
    if torch_runs:
        ratio = statistics.median(nt_res["total"]) / statistics.median(res["torch eager"]["total"])
        isa, name = cpu_isa()
        target = TARGET_RATIO.get(isa, TARGET_RATIO["avx2"])
        verdict = "meets" if ratio <= target else "MISSES"
        print(
            f"\nnumtrans / torch = {ratio:.2f}x step time at {args.threads} thread(s): {verdict} "
            f"the target <= {target}x for this CPU ({name}, {isa})"
        )
    if ckpt_runs:
        plain, ck = res["numtrans"], res["numtrans, checkpointing"]
        time_x = statistics.median(ck["total"]) / statistics.median(plain["total"])
        print(
            f"\ngradient checkpointing: NumPy peak in one step {plain['traced_peak_mib']:.0f} -> "
            f"{ck['traced_peak_mib']:.0f} MiB ({ck['traced_peak_mib'] / plain['traced_peak_mib']:.2f}x), "
            f"peak RSS {plain['peak_rss_mib']:.0f} -> {ck['peak_rss_mib']:.0f} MiB, "
            f"step time {time_x:.2f}x"
        )
    if args.analyze:
        print_analysis(analysis_run["analysis"], statistics.median(nt_res["total"]) * 1e3, res)
    if nt_text.strip():
        print(nt_text)
    print(f"\n(total benchmark wall time {time.perf_counter() - t_start:.0f} s)")
    return 0


def print_analysis(a: dict, step_ms: float, res: dict) -> None:
    floor = a["gemm_floor"]
    tiny = a["tiny_step_ms"]
    tiny_total = tiny["fwd"] + tiny["bwd"] + tiny["opt"]
    print("\n==== analysis (a separate numtrans process)")
    print(f"autograd graph: {a['graph_nodes']} nodes per forward")
    print(
        f"GEMM-only floor (the step's {floor['gflop']:.1f} GFLOP of matmuls in plain NumPy, "
        f"preallocated outputs): {floor['ms']:.1f} ms = {floor['ms'] / step_ms:.0%} of the "
        f"numtrans step ({floor['gflop'] / floor['ms'] * 1e3:.0f} GFLOP/s)"
    )
    top = sorted(floor["per_gemm_ms"].items(), key=lambda kv: -kv[1])
    print("  per GEMM (ms, all layers): " + ", ".join(f"{k} {v:.1f}" for k, v in top))
    print(
        f"dispatch overhead (same graph at n_embd 16, T 8, batch 1): {tiny_total:.1f} ms/step "
        f"(forward {tiny['fwd']:.1f}, backward {tiny['bwd']:.1f}, optimizer {tiny['opt']:.1f})"
    )
    within = step_ms / floor["ms"]
    verdict = "meets" if within <= TARGET_FLOOR_RATIO else "MISSES"
    print(
        f"step / GEMM floor = {within:.2f}x: {verdict} the target <= {TARGET_FLOOR_RATIO}x "
        "(the floor computes attention with NumPy matmuls; the step uses the fused kernel)"
    )
    rest = step_ms - floor["ms"] - tiny_total
    print(
        f"remainder = step - GEMM floor - dispatch = {rest:.1f} ms: elementwise work, "
        f"temporaries (allocation, page faults), and GEMMs slower than the floor's"
    )


if __name__ == "__main__":
    sys.exit(main())
