"""``numtrans train-qa`` and ``numtrans answer``: an extractive question-answering reader.

    numtrans train-qa --model ENCODER_DIR --train squad.json [--train more.json] --out DIR
                      [--epochs 2] [--lr 5e-5] [--batch-size 16] [--max-length 384] [--stride 128]
                      [--minutes M] [--max-cpu-minutes M] [--max-steps N]
    numtrans answer --model DIR --context FILE_OR_TEXT "question" [--allow-no-answer]
                    [--threshold T]

``train-qa`` fine-tunes a reader (``numtrans.qa``): ``--model`` is any BERT encoder directory
(a Hugging Face one such as all-MiniLM-L6-v2, or a numtrans ``BertModel``), which gets a new
``qa_outputs`` head, or a reader saved before (training continues). ``answer`` prints the answer,
then ``score``, and the character span ``start-end`` of the context, tab-separated.
"""

from __future__ import annotations

import os


def register(subparsers) -> None:
    """Add the ``train-qa`` and ``answer`` parsers to ``subparsers``."""
    t = subparsers.add_parser(
        "train-qa",
        help="fine-tune an extractive QA reader on SQuAD-format JSON",
        description="Fine-tune a BERT encoder as a SQuAD reader (start/end span prediction).",
    )
    t.add_argument("--model", required=True, help="a BERT encoder or reader directory")
    t.add_argument("--train", action="append", required=True, help="SQuAD v1.1/v2.0 JSON file")
    t.add_argument("--out", required=True, help="where the reader directory is written")
    t.add_argument("--epochs", type=float, default=2.0)
    t.add_argument("--lr", type=float, default=5e-5)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--max-length", type=int, default=384)
    t.add_argument("--stride", type=int, default=128, help="tokens shared by adjacent windows")
    t.add_argument("--minutes", type=float, default=None, help="training time limit")
    t.add_argument("--max-cpu-minutes", type=float, default=None,
                   help="limit on this process's CPU time in training steps")  # fmt: skip
    t.add_argument("--max-steps", type=int, default=None, help="the schedule is fitted to it")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=train_qa_command)

    a = subparsers.add_parser(
        "answer",
        help="answer a question from a passage with a trained reader",
        description="Extract the answer to a question from a context passage.",
    )
    a.add_argument("--model", required=True, help="a directory written by train-qa")
    a.add_argument("--context", required=True, help="the passage: a file path, or the text")
    a.add_argument("question", help="the question")
    a.add_argument("--max-length", type=int, default=384)
    a.add_argument("--stride", type=int, default=128)
    a.add_argument("--max-answer-length", type=int, default=30, help="in tokens")
    a.add_argument("--allow-no-answer", action="store_true", help="SQuAD 2.0: may answer ''")
    a.add_argument("--threshold", type=float, default=0.0, help="null-score difference")
    a.set_defaults(func=answer_command)


def _load_reader(directory: str, need_head: bool = False, **kwargs):
    from ..qa import QuestionAnsweringReader
    from ..qa.reader import saved_architecture

    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no such model directory: {directory!r}")
    arch = saved_architecture(directory)
    if arch == "BertForQuestionAnswering":
        return QuestionAnsweringReader.from_pretrained(directory, **kwargs)
    if need_head:  # an encoder alone would answer with an untrained, random head
        raise ValueError(f"{directory!r} holds no QA reader; train one with `numtrans train-qa`")
    return QuestionAnsweringReader.from_encoder(directory, **kwargs)


def train_qa_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    from ..qa import prepare_features, read_squad
    from ..recipes.qa import train_qa

    reader = _load_reader(args.model, max_length=args.max_length, stride=args.stride)
    examples = [ex for path in args.train for ex in read_squad(path)]
    answerable = sum(not ex.is_impossible for ex in examples)
    features = prepare_features(examples, reader.tokenizer, args.max_length, args.stride)
    print(
        f"{len(examples)} questions ({answerable} answerable), "
        f"{len(features['input_ids'])} windows of {args.max_length} tokens"
    )
    for name in ("minutes", "max_cpu_minutes", "max_steps"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0")
    seconds = None if args.minutes is None else 60 * args.minutes
    cpu = None if args.max_cpu_minutes is None else 60 * args.max_cpu_minutes
    losses = train_qa(
        reader.model, features, args.epochs, args.lr, args.batch_size, seed=args.seed,
        max_seconds=seconds, max_cpu_seconds=cpu, max_steps=args.max_steps, log_every=50,
    )  # fmt: skip
    reader.save_pretrained(args.out)
    print(f"{len(losses)} steps, final loss {losses[-1]:.4f}; reader saved to {args.out}")
    return 0


def answer_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    context = args.context
    if os.path.isfile(context):
        with open(context, encoding="utf-8") as f:
            context = f.read()
    if not args.question.strip():
        raise ValueError("the question is empty")
    reader = _load_reader(
        args.model, True, max_length=args.max_length, stride=args.stride,
        max_answer_length=args.max_answer_length, version_2_with_negative=args.allow_no_answer,
        null_score_diff_threshold=args.threshold,
    )  # fmt: skip
    out = reader.answer(args.question, context)
    if out["start"] is None:
        print(f"(no answer)\t{out['score']:.4f}\t-")
    else:
        print(f"{out['answer']}\t{out['score']:.4f}\t{out['start']}-{out['end']}")
    return 0
