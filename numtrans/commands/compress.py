"""``numtrans distill`` and ``numtrans quantize``: smaller models from a trained one.

    numtrans distill --teacher DIR --data FILE --layers N --out DIR [--alpha A] [--temperature T]
                     [--hidden-weight W] [--attention-weight W]
    numtrans quantize --model DIR --out DIR [--bits 8|4] [--group-size G] [--skip PATTERN]
                      [--no-embeddings] [--data FILE]

``distill`` reads a classifier written by ``numtrans finetune`` (e.g. MiniLM fine-tuned on
``uci_sentiment``) and trains a student made of every other teacher layer (N evenly spaced
ones) on the teacher's soft targets plus the labels (``numtrans.recipes.distill``); the
teacher's logits are computed once and cached in the output directory. ``--alpha 0`` trains the
same student on the labels alone, for comparison. The output is a fine-tuned directory like
``finetune``'s: ``numtrans evaluate`` reads it.

``quantize`` writes an int8 (or 4-bit) copy of a float model directory (a fine-tuned classifier,
a BertModel, a Hugging Face BERT, a GPT) with its tokenizer and labels; ``--data`` scores a
classifier before and after on the same rows. Load the result with
``numtrans.compress.load_quantized(cls, DIR)``.
"""

from __future__ import annotations

import os
import shutil

TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "labels.json",
)


def register(subparsers) -> None:
    """Add the ``distill`` and ``quantize`` parsers to ``subparsers``."""
    d = subparsers.add_parser(
        "distill",
        help="distil a fine-tuned BERT classifier into a shallower student",
        description="Train a student of N of the teacher's layers on its soft targets "
        "(Hinton et al.'s loss) and the labels.",
    )
    d.add_argument("--teacher", required=True, help="a directory written by `numtrans finetune`")
    d.add_argument("--data", required=True, help="TSV/CSV/JSONL of (text, label), or uci_sentiment")
    d.add_argument("--layers", type=int, required=True, help="encoder layers of the student")
    d.add_argument("--out", required=True, help="where the student is written")
    d.add_argument("--eval-data", help="validation rows (default: --val-fraction of --data)")
    d.add_argument("--val-fraction", type=float, default=0.1)
    d.add_argument("--text-column", help="name or 0-based index (default: text/sentence)")
    d.add_argument("--label-column", help="name or 0-based index (default: label)")
    d.add_argument("--temperature", type=float, default=2.0)
    d.add_argument("--alpha", type=float, default=0.5, help="soft-target weight; 0: labels only")
    d.add_argument(
        "--hidden-weight",
        type=float,
        default=0.0,
        help="add TinyBERT's hidden-state MSE with this weight (0: off)",
    )
    d.add_argument(
        "--attention-weight",
        type=float,
        default=0.0,
        help="add MiniLM's last-layer attention KL with this weight (0: off)",
    )
    d.add_argument("--epochs", type=float, default=3.0)
    d.add_argument("--batch-size", type=int, default=16)
    d.add_argument("--lr", type=float, default=5e-5)
    d.add_argument("--max-length", type=int, default=64)
    d.add_argument("--max-steps", type=int)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=distill_command)

    q = subparsers.add_parser(
        "quantize",
        help="write an int8 (or 4-bit) copy of a model directory",
        description="Post-training quantization: int8 weights with per-channel scales and "
        "dynamic int8 activations (or 4-bit group-wise weights), int8 embedding tables.",
    )
    q.add_argument("--model", required=True, help="a float model directory")
    q.add_argument("--out", required=True, help="where the quantized model is written")
    q.add_argument("--bits", type=int, default=8, choices=(8, 4))
    q.add_argument("--group-size", type=int, help="inputs per 4-bit scale (default 32)")
    q.add_argument("--skip", action="append", default=[], help="keep layers matching in float32")
    q.add_argument("--no-embeddings", action="store_true", help="keep embedding tables float32")
    q.add_argument("--data", help="labelled rows: score a classifier before and after")
    q.set_defaults(func=quantize_command)


def distill_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    from ..compress.quantize import check_float_directory
    from ..finetune import read_labeled
    from ..recipes.distill import DistillConfig, distill
    from ..validation import check_output_dir

    cfg = DistillConfig(
        num_layers=args.layers,
        temperature=args.temperature,
        alpha=args.alpha,
        hidden_weight=args.hidden_weight,
        attention_weight=args.attention_weight,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_length=args.max_length,
        max_steps=args.max_steps,
        seed=args.seed,
    )  # fmt: skip  (settings are checked here, before any file is read)
    check_float_directory(args.teacher)
    check_output_dir(args.out, "out")
    data = read_labeled(args.data, args.text_column, args.label_column, "classification")
    if args.eval_data:
        train = data
        val = read_labeled(args.eval_data, args.text_column, args.label_column, "classification")
    else:
        train, val = data.split(args.val_fraction, args.seed)
    distill(args.teacher, train, cfg, val=val, out_dir=args.out)
    return 0


def _load_float(directory: str):
    """The model in a float directory and its class (fine-tuned classifiers included)."""
    from ..finetune.models import model_kind
    from ..models.bert import BertModel
    from ..models.bert_heads import BertForMaskedLM, BertForSequenceClassification
    from ..models.gpt import GPT
    from ..models.gpt_heads import GPTForSequenceClassification

    kind = model_kind(directory)
    classes = {
        c.__name__: c
        for c in (BertModel, BertForMaskedLM, BertForSequenceClassification, GPT,
                  GPTForSequenceClassification)
    }  # fmt: skip
    classes.update({"hf-bert": BertModel, "hf-gpt2": GPT})
    if kind not in classes:
        raise ValueError(f"{directory!r} holds a {kind}, which `numtrans quantize` does not know")
    cls = classes[kind]
    return cls.from_pretrained(directory), cls


def _size_mb(directory: str) -> float:
    return os.path.getsize(os.path.join(directory, "model.safetensors")) / 1e6


def quantize_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    from ..compress import quantize, save_quantized
    from ..compress.quantize import check_float_directory
    from ..validation import check_output_dir

    if args.group_size is not None and args.bits != 4:
        raise ValueError("--group-size applies to --bits 4 only (int8 uses per-channel scales)")
    check_float_directory(args.model)
    check_output_dir(args.out, "out")
    model, cls = _load_float(args.model)
    q = quantize(
        model, args.bits, args.group_size, skip=args.skip, embeddings=not args.no_embeddings
    )
    save_quantized(q, args.out)
    for name in TOKENIZER_FILES:
        src = os.path.join(args.model, name)
        if os.path.isfile(src):
            shutil.copyfile(src, os.path.join(args.out, name))
    info = q.quantization
    print(
        f"quantized {cls.__name__} to {info['bits']}-bit: {len(info['layers'])} Linear, "
        f"{len(info['embeddings'])} embedding table(s); model.safetensors "
        f"{_size_mb(args.model):.2f} MB -> {_size_mb(args.out):.2f} MB "
        f"({_size_mb(args.model) / _size_mb(args.out):.2f}x smaller) in {args.out}"
    )
    if args.data:
        _score(model, q, args.model, args.data)
    return 0


def _score(model, q, directory: str, data_path: str) -> None:
    from ..finetune import LabelMap, load_tokenizer, read_labeled
    from ..recipes.finetune import evaluate, format_metrics

    if not hasattr(model.config, "num_labels") or not os.path.isfile(
        os.path.join(directory, "labels.json")
    ):
        raise ValueError("--data needs a fine-tuned classifier (a directory with labels.json)")
    labels, extra = LabelMap.load(directory)
    tokenizer, max_length = load_tokenizer(directory), int(extra.get("max_length", 128))
    data = read_labeled(data_path, task=labels.task)
    print(f"float32: {format_metrics(evaluate(model, tokenizer, data, labels, max_length))}")
    print(
        f"int{q.quantization['bits']}:    {format_metrics(evaluate(q, tokenizer, data, labels, max_length))}"
    )
