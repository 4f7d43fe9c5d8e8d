"""``numtrans index`` and ``numtrans search``: a knowledge base of passages, searched.

    numtrans index --model MINILM_DIR --docs FILE --out INDEX [--batch-size 32]
    numtrans search --index INDEX "question" ["more" ...] [-k 5] [--method dense|bm25|hybrid]
                    [--model MINILM_DIR]
    numtrans ask --index INDEX --reader READER_DIR "question" [-k 5] [--method hybrid]

``index`` reads a knowledge-base file (one passage per line, or JSONL with a "text" field;
``numtrans.retrieval.read_documents``), embeds every passage with the sentence encoder in
``--model`` (all-MiniLM-L6-v2) and writes one safetensors file: the embeddings, the passages'
texts, the model's directory and a hash of its weights. ``search`` encodes the question with the
same model (the directory recorded in the index unless ``--model`` is given; another model is
refused) and prints the k best passages as ``rank<TAB>score<TAB>passage`` lines: cosine for
``dense``, the BM25 score for ``bm25``, the RRF score for ``hybrid``. A question of ``-`` reads
the questions from standard input, one a line.

``ask`` is the knowledge-base question answerer: retrieve the k best passages, let the reader
(from ``numtrans train-qa``) read each, and print the answer whose span scores highest (start +
end logit, comparable across passages because the reader scores every window the same way) as
``answer<TAB>score<TAB>rank of its passage<TAB>passage``.
"""

from __future__ import annotations

import os
import sys


def register(subparsers) -> None:
    """Add the ``index`` and ``search`` parsers to ``subparsers``."""
    p = subparsers.add_parser(
        "index",
        help="embed a knowledge base of passages into a dense index",
        description="Embed every passage of a text/JSONL file with a sentence encoder "
        "(all-MiniLM-L6-v2) and save a safetensors index that `numtrans search` reads.",
    )
    p.add_argument("--model", required=True, help="a sentence-encoder directory (MiniLM)")
    p.add_argument("--docs", required=True, help="passages: one a line, or JSONL with 'text'")
    p.add_argument("--out", required=True, help="the index file to write (.safetensors)")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=index_command)

    s = subparsers.add_parser(
        "search",
        help="retrieve the passages of an index that best match a question",
        description="Print the k passages of an index (from `numtrans index`) closest to each "
        "question: rank, score and passage, tab-separated.",
    )
    s.add_argument("--index", required=True, help="an index written by `numtrans index`")
    s.add_argument("query", nargs="+", help="question(s); '-' reads them from stdin")
    s.add_argument("-k", "--top-k", dest="k", type=int, default=5, help="passages per question")
    s.add_argument("--method", default="dense", choices=("dense", "bm25", "hybrid"))
    s.add_argument("--model", help="the encoder directory (default: the one the index names)")
    s.set_defaults(func=search_command)

    a = subparsers.add_parser(
        "ask",
        help="answer a question from a knowledge base (retriever + reader)",
        description="Retrieve the k passages of an index closest to the question, read each "
        "with a QA reader, and print the best answer with its passage.",
    )
    a.add_argument("--index", required=True, help="an index written by `numtrans index`")
    a.add_argument("--reader", required=True, help="a reader directory from `numtrans train-qa`")
    a.add_argument("question", help="the question")
    a.add_argument("-k", "--top-k", dest="k", type=int, default=5, help="passages to read")
    a.add_argument("--method", default="hybrid", choices=("dense", "bm25", "hybrid"))
    a.add_argument("--model", help="the encoder directory (default: the one the index names)")
    a.add_argument("--max-length", type=int, default=384, help="reader window, in tokens")
    a.add_argument("--stride", type=int, default=128, help="tokens shared by adjacent windows")
    a.set_defaults(func=ask_command)


def index_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f"--out: directory {out_dir} does not exist")
    from ..models import SentenceEncoder
    from ..retrieval import DenseIndex, read_documents

    documents = read_documents(args.docs)  # before loading the model: bad files fail fast
    encoder = SentenceEncoder.from_pretrained(args.model)
    index = DenseIndex.build(encoder, documents, os.path.abspath(args.model), args.batch_size)
    index.save(args.out)
    print(f"indexed {len(index)} passages ({index.dimension} dimensions) -> {args.out}")
    return 0


def _queries(args) -> list[str]:
    queries = [line.rstrip("\n") for line in sys.stdin] if args.query == ["-"] else args.query
    queries = [q for q in queries if q.strip()]
    if not queries:
        raise ValueError("nothing to search for: give a non-empty question")
    return queries


def search_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    if args.k < 1:
        raise ValueError(f"-k must be >= 1, got {args.k}")
    from ..retrieval import DenseIndex

    index = DenseIndex.load(args.index)
    queries = _queries(args)
    results = _retrieve(args, index, queries, min(args.k, len(index)))
    for q, found in zip(queries, results):
        if len(queries) > 1:
            print(f"# {q}")
        for rank, (doc, score) in enumerate(found, start=1):
            print(f"{rank}\t{score:.4f}\t{index.documents[doc]}")
    return 0


def _retrieve(args, index, queries, k):
    """For each query, the k best (passage id, score) pairs by ``args.method``."""
    from ..retrieval import BM25, tokenize

    if args.method != "bm25":
        return _model_results(args, index, queries, k)
    bm25 = BM25([tokenize(d) for d in index.documents])  # lexical only: no model needed
    results = []
    for q in queries:
        scores = bm25.get_scores(tokenize(q))
        results.append([(int(i), float(scores[i])) for i in bm25.top_k(tokenize(q), k)])
    return results


def ask_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    if args.k < 1:
        raise ValueError(f"-k must be >= 1, got {args.k}")
    if not args.question.strip():
        raise ValueError("the question is empty")
    from ..retrieval import DenseIndex
    from .qa import _load_reader

    index = DenseIndex.load(args.index)
    reader = _load_reader(
        args.reader, True, max_length=args.max_length, stride=args.stride
    )  # refuse a bare encoder
    found = _retrieve(args, index, [args.question], min(args.k, len(index)))[0]
    passages = [index.documents[doc] for doc, _ in found]
    answers = reader.answer_batch([args.question] * len(passages), passages)
    best = max(range(len(answers)), key=lambda i: answers[i]["score"])
    out = answers[best]
    print(f"{out['answer'] or '(no answer)'}\t{out['score']:.4f}\t{best + 1}\t{passages[best]}")
    return 0


def _model_results(args, index, queries, k):
    from ..models import SentenceEncoder
    from ..retrieval import DenseRetriever, HybridRetriever, reciprocal_rank_fusion

    directory = args.model or index.model
    if not directory or not os.path.isdir(directory):
        raise FileNotFoundError(
            f"the index's model directory {directory!r} is not there: give --model DIR"
        )
    retriever = DenseRetriever(
        SentenceEncoder.from_pretrained(directory), index, os.path.abspath(directory)
    )
    if args.method == "dense":
        scores, ids = retriever.retrieve(queries, k)
        return [list(zip(row_ids.tolist(), row_s.tolist())) for row_ids, row_s in zip(ids, scores)]
    hybrid = HybridRetriever.from_dense(retriever)
    lexical, dense = hybrid.rankings(queries)
    return [
        reciprocal_rank_fusion([a, b], hybrid.rrf_k)[:k]
        for a, b in zip(lexical.tolist(), dense.tolist())
    ]
