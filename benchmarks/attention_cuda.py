"""CUDA fused attention (numtrans.native.cuda) vs PyTorch's F.scaled_dot_product_attention, one GPU.

    python benchmarks/attention_cuda.py [--quick] [--budget S] [--time-limit S] [--json FILE]

Needs a GPU, PyTorch with CUDA and numtrans built with its CUDA module (NUMTRANS_CUDA=ON). Both
implementations get the same torch CUDA tensors (numtrans reads them in place, without copies).
For each shape, causal or not, float32, and pass (forward; backward alone, given the forward's
results; forward + backward), each implementation is timed with CUDA events around one call on
each of three sets of inputs, queued back to back (so that no call finds its inputs in the
50-60 MB L2 cache left by the previous one, and Python's overhead overlaps GPU work), after
warm-up calls; the table shows medians per call.

TFLOP/s counts 4 B H N^2 D for the forward (half when causal) and 2.5x that for the backward,
FlashAttention-2's convention, so recomputation is not credited. "speed" is PyTorch's time over
numtrans' time (above 1: numtrans is faster); the targets are 0.7 for the forward and 0.5 for
the backward. PyTorch picks its own kernel: for float32 on sm80+ GPUs that should be its
memory-efficient attention, which by its source runs the products on tensor cores in the 3xTF32
scheme (float32 accuracy from three TF32 products), while numtrans uses plain float32 FMA units.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

SHAPES = [(4, 16, 1024, 64), (1, 16, 4096, 64), (1, 8, 16384, 128)]
QUICK = [(4, 16, 1024, 64)]
TARGETS = {"fwd": 0.7, "bwd": 0.5}


def flops(shape, causal, kind):
    B, H, N, D = shape
    f = 4 * B * H * N * N * D / (2 if causal else 1)
    return f * {"fwd": 1.0, "bwd": 2.5, "fwd+bwd": 3.5}[kind]


def timed(torch, call, sets, budget_s, warmup=3, reps=25, min_reps=5):
    """Median milliseconds per call: each sample times one call on each input set, queued back
    to back between two CUDA events (so that Python's overhead of one call overlaps the GPU work
    of the previous one, as in a real model), divided by the number of sets."""
    for i in range(warmup):
        call(sets[i % len(sets)])
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times, t0 = [], time.perf_counter()
    for _ in range(reps):
        start.record()
        for s in sets:
            call(s)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / len(sets))
        if len(times) >= min_reps and time.perf_counter() - t0 > budget_s:
            break
    return statistics.median(times), len(times)


def make_calls(torch, nc, causal):
    """{(impl, pass): call(inputs)} for numtrans and torch."""
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def ours_fwd(s):
        nc.attention_forward(s["q"], s["k"], s["v"], is_causal=causal)

    def ours_bwd(s, deterministic=False):
        args = (s["g"], s["q"], s["k"], s["v"], s["out"], s["lse"])
        nc.attention_backward(*args, is_causal=causal, deterministic=deterministic)

    def ours_both(s):
        out, lse = nc.attention_forward(s["q"], s["k"], s["v"], is_causal=causal)
        nc.attention_backward(s["g"], s["q"], s["k"], s["v"], out, lse, is_causal=causal)

    def torch_fwd(s):
        with torch.no_grad():
            sdpa(s["q"], s["k"], s["v"], is_causal=causal)

    def torch_bwd(s):
        torch.autograd.grad(s["tout"], s["leaves"], s["g"], retain_graph=True)

    def torch_both(s):
        out = sdpa(*s["leaves"], is_causal=causal)
        torch.autograd.grad(out, s["leaves"], s["g"])

    return {
        ("numtrans", "fwd"): ours_fwd,
        ("torch", "fwd"): torch_fwd,
        ("numtrans", "bwd"): ours_bwd,
        ("numtrans det.", "bwd"): lambda s: ours_bwd(s, deterministic=True),
        ("torch", "bwd"): torch_bwd,
        ("numtrans", "fwd+bwd"): ours_both,
        ("torch", "fwd+bwd"): torch_both,
    }


def inputs(torch, nc, shape, causal, n_sets, seed):
    sets = []
    for i in range(n_sets):
        g = torch.Generator(device="cuda").manual_seed(seed + i)
        q, k, v, do = (torch.randn(shape, device="cuda", generator=g) for _ in range(4))
        out, lse = nc.attention_forward(q, k, v, is_causal=causal)
        leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
        tout = torch.nn.functional.scaled_dot_product_attention(*leaves, is_causal=causal)
        sets.append(dict(q=q, k=k, v=v, g=do, out=out, lse=lse, leaves=leaves, tout=tout))
    return sets


def agreement(s):
    """Largest |numtrans - torch| of the forward output, relative to max |torch|."""
    ref = s["tout"].detach()
    return float((s["out"] - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the first shape")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds per timed cell")
    parser.add_argument(
        "--time-limit", type=float, help="seconds for the whole run: shrinks --budget to fit"
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: this benchmark compares against torch on the GPU.")
        return 2
    if not torch.cuda.is_available():
        print(f"no GPU visible to PyTorch {torch.__version__} (torch.cuda.is_available() is False)")
        return 2
    from numtrans import backends

    if not backends.is_available("cuda"):
        print(f"numtrans' cuda backend is not available: {backends.reason('cuda')}")
        print("build it with: NUMTRANS_CUDA=ON pip install --no-build-isolation .")
        return 2
    from numtrans.native import cuda as nc

    module = backends.get("cuda")
    props = torch.cuda.get_device_properties(0)
    print(
        f"GPU: {props.name}, {props.multi_processor_count} SMs, "
        f"{props.total_memory / 2**30:.0f} GiB; torch {torch.__version__} (CUDA {torch.version.cuda})"
    )
    for d in sorted({s[3] for s in (QUICK if args.quick else SHAPES)}):
        t = module.attention_tiles("float32", d)
        print(
            f"numtrans tiles, float32, D={d}: forward {t['forward']['queries']}x"
            f"{t['forward']['keys']} ({t['forward']['smem_bytes'] // 1024} KB), backward dK/dV "
            f"{t['backward_kv']['keys']}x{t['backward_kv']['queries']} "
            f"({t['backward_kv']['smem_bytes'] // 1024} KB), {t['threads']} threads per block"
        )
    shapes = QUICK if args.quick else SHAPES
    cells = len(shapes) * 2 * 7
    if args.time_limit:  # timed reps take about half of a cell's time (set-up, warm-up)
        args.budget = max(0.1, min(args.budget, 0.5 * args.time_limit / cells))
    print(f"timing: CUDA events, 3 input sets per sample, medians, ~{args.budget:.2f}s per cell")
    print()
    header = (
        f"{'B,H,N,D':>16} {'causal':>6} {'pass':>7} {'impl':>13} {'ms':>9} {'TFLOP/s':>8} "
        f"{'speed':>6}  target"
    )
    print(header)
    print("-" * len(header))
    results, worst = [], {}
    for shape in shapes:
        for causal in (False, True):
            sets = inputs(torch, nc, shape, causal, 3, seed=len(results))
            calls = make_calls(torch, nc, causal)
            agree = agreement(sets[0])
            ms = {}
            for (impl, kind), call in calls.items():
                ms[impl, kind], _ = timed(torch, call, sets, args.budget)
            for (impl, kind), t in ms.items():
                tf = flops(shape, causal, kind) / (t * 1e-3) / 1e12
                speed = ms["torch", kind] / t if impl != "torch" else None
                target = TARGETS.get(kind) if impl == "numtrans" else None
                if target is not None:
                    worst[kind] = min(worst.get(kind, float("inf")), speed)
                mark = (
                    ""
                    if target is None
                    else f"{target:.1f} " + ("ok" if speed >= target else "MISS")
                )
                print(
                    f"{','.join(map(str, shape)):>16} {str(causal):>6} {kind:>7} {impl:>13} "
                    f"{t:9.3f} {tf:8.2f} {'' if speed is None else f'{speed:6.2f}':>6}  {mark}"
                )
                results.append(
                    dict(
                        shape=shape,
                        causal=causal,
                        kind=kind,
                        impl=impl,
                        ms=t,
                        tflops=tf,
                        speed=speed,
                    )
                )
            print(f"{'':>16} {'':>6} max |out - torch out| / max |torch out| = {agree:.2e}")
            del sets
            torch.cuda.empty_cache()
    print()
    for kind, target in TARGETS.items():
        w = worst.get(kind, float("nan"))
        verdict = "met" if w >= target else "NOT met"
        print(f"{kind}: slowest numtrans / torch speed {w:.2f} (target >= {target}): {verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(gpu=props.name, torch=torch.__version__, results=results), f, indent=1)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
