"""``numtrans pretrain-mlm``, ``finetune``, ``evaluate`` and ``merge-adapter``.

    numtrans pretrain-mlm [--data uci_sentiment] [--out DIR] [--max-steps N] [--key=value ...]
    mpirun -n P numtrans pretrain-mlm ... --ddp [--zero [2]]  (data parallel; numtrans[mpi])
    numtrans finetune --model DIR --task classify|regress --data FILE [--out DIR] [options]
                      [--lora R [--lora-alpha A] [--lora-targets "query value"]]
    mpirun -n P numtrans finetune ... --ddp       (data parallel over P ranks; numtrans[mpi])
    numtrans evaluate --model DIR [--adapter DIR] --data FILE [--confusion-matrix PNG] [--json FILE]
    numtrans merge-adapter --model BASE --adapter DIR --out DIR

``--data`` is a TSV, CSV or JSONL file of (text, label) rows (``numtrans.finetune.data``) or a
bundled table such as ``uci_sentiment``. ``finetune`` starts from any pretrained directory
(``pretrain-mlm``'s output, a Hugging Face BERT such as MiniLM, a GPT from ``numtrans pretrain``)
and writes the model, its tokenizer and ``labels.json`` to ``--out``; ``evaluate`` reads them.
With ``--lora R`` only low-rank adapters and the head train, and ``--out`` gets the adapter alone
(``numtrans.finetune.adapters``): ``evaluate --adapter`` loads it onto its base, and
``merge-adapter`` folds it into a plain model directory.
"""

from __future__ import annotations

import ast
import json

from .overrides import ZERO_OPTION


def register(subparsers) -> None:
    """Add the ``pretrain-mlm``, ``finetune`` and ``evaluate`` parsers to ``subparsers``."""
    m = subparsers.add_parser(
        "pretrain-mlm",
        help="pretrain a small BERT by masked language modelling",
        description="Learn a WordPiece vocabulary and pretrain a BertForMaskedLM on a corpus. "
        "Any field of MLMConfig can be set with --key=value (e.g. --hidden_size=256).",
    )
    m.add_argument("--data", default="uci_sentiment", help="a bundled corpus or a text file")
    m.add_argument("--out", default="runs/mlm", help="where the model directory is written")
    m.add_argument("--max-steps", dest="max_steps", type=int, help="training steps")
    m.add_argument("--ddp", action="store_true",
                   help="data parallel over the ranks of mpirun (mpirun -n 2 numtrans "
                   "pretrain-mlm ... --ddp); rank 0 prints and saves")  # fmt: skip
    m.add_argument("--zero", **ZERO_OPTION)
    m.set_defaults(func=pretrain_mlm_command)

    f = subparsers.add_parser(
        "finetune",
        help="fine-tune a pretrained model for text classification or regression",
        description="Fine-tune a pretrained BERT or GPT directory on (text, label) rows.",
    )
    f.add_argument("--model", required=True, help="a pretrained model directory")
    f.add_argument("--task", default="classify", choices=["classify", "regress"])
    f.add_argument("--data", required=True, help="TSV/CSV/JSONL of (text, label), or uci_sentiment")
    f.add_argument("--eval-data", help="validation rows (default: --val-fraction of --data)")
    f.add_argument("--val-fraction", type=float, default=0.1)
    f.add_argument("--out", default="runs/finetune", help="where the fine-tuned model is written")
    _columns(f)
    f.add_argument("--epochs", type=float, default=3.0)
    f.add_argument("--batch-size", type=int, default=16)
    f.add_argument("--lr", type=float, default=5e-5, help="learning rate of the head")
    f.add_argument("--body-lr", type=float, help="learning rate of the pretrained body")
    f.add_argument("--freeze", action="store_true", help="train the head only")
    f.add_argument("--freeze-embeddings", action="store_true", help="keep token embeddings fixed")
    f.add_argument("--pooling", default="mean", choices=["mean", "cls", "pooled"])
    f.add_argument("--max-length", type=int, default=64)
    f.add_argument("--max-steps", type=int)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--progress", action="store_true", help="show a progress bar")
    f.add_argument("--lora", dest="lora_r", type=int, metavar="R",
                   help="LoRA of rank R: train adapters and the head only, save the adapter")  # fmt: skip
    f.add_argument("--lora-alpha", type=float, default=16.0, help="LoRA scale: (alpha / R) B A")
    f.add_argument("--lora-targets", metavar="PATTERN",
                   help='Linear layers to adapt, e.g. "query value" (default: attention)')  # fmt: skip
    f.add_argument("--ddp", action="store_true",
                   help="data parallel over the ranks of mpirun (mpirun -n 2 numtrans finetune "
                   "... --ddp; pip install 'numtrans[mpi]'); rank 0 prints and saves")  # fmt: skip
    f.add_argument("--zero", **ZERO_OPTION)
    f.set_defaults(func=finetune_command)

    e = subparsers.add_parser(
        "evaluate",
        help="score a fine-tuned model on labelled data",
        description="Accuracy, macro-F1 and the confusion matrix (or MSE, MAE and Pearson r).",
    )
    e.add_argument("--model", required=True, help="a directory written by `numtrans finetune`")
    e.add_argument("--adapter", help="a LoRA adapter (finetune --lora) to load onto --model")
    e.add_argument("--data", required=True, help="TSV/CSV/JSONL of (text, label)")
    _columns(e)
    e.add_argument("--confusion-matrix", dest="png", help="save the confusion matrix as a PNG")
    e.add_argument("--json", dest="json_path", help="write the metrics to a JSON file")
    e.set_defaults(func=evaluate_command)

    g = subparsers.add_parser(
        "merge-adapter",
        help="fold a LoRA adapter into its base: a plain fine-tuned model",
        description="W + (alpha / r) B A in every adapted layer, the head from the adapter; "
        "the result is scored by `numtrans evaluate --model OUT` as base + adapter were.",
    )
    g.add_argument("--model", required=True, help="the base the adapter was trained on")
    g.add_argument("--adapter", required=True, help="a directory written by `finetune --lora`")
    g.add_argument("--out", required=True, help="where the merged model is written")
    g.set_defaults(func=merge_adapter_command)


def _columns(parser) -> None:
    parser.add_argument("--text-column", help="name or 0-based index (default: text/sentence)")
    parser.add_argument("--label-column", help="name or 0-based index (default: label)")


def _overrides(items: list[str]) -> dict:
    """``--hidden_size=256 --lr 3e-4`` -> {"hidden_size": 256, "lr": 0.0003}."""
    out, i = {}, 0
    while i < len(items):
        key, eq, value = items[i].removeprefix("--").partition("=")
        if not items[i].startswith("--"):
            raise ValueError(f"unexpected argument {items[i]!r}; settings look like --key=value")
        if not eq:
            if i + 1 >= len(items):
                raise ValueError(f"setting --{key} needs a value (--{key}=VALUE)")
            value, i = items[i + 1], i + 1
        try:
            out[key.replace("-", "_")] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.replace("-", "_")] = value
        i += 1
    return out


def pretrain_mlm_command(args, extra: list[str]) -> int:
    import dataclasses

    from ..distributed import (
        abort_on_error,
        check_ranks_fit,
        init_world,
        require_ddp,
        share_from_main,
    )
    from ..recipes.mlm import MLMConfig, corpus_texts, pretrain_mlm

    values = _overrides(extra)
    if args.max_steps is not None:
        values["max_steps"] = args.max_steps
    known = {f.name for f in dataclasses.fields(MLMConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
    cfg = MLMConfig(**values)
    require_ddp(args.zero, args.ddp, "--zero", "pretrain-mlm")
    if not args.ddp:
        pretrain_mlm(corpus_texts(args.data), cfg, out_dir=args.out)
        return 0
    world = init_world(command="pretrain-mlm")

    def read():  # on rank 0: a bad corpus or too many ranks is said once, not once per rank
        check_ranks_fit(cfg.batch_size, world.size)
        return corpus_texts(args.data)

    texts = share_from_main(world, read)
    with abort_on_error(world):  # one rank failing ends the job instead of hanging the others
        pretrain_mlm(texts, cfg, out_dir=args.out, world=world, zero=args.zero)
    return 0


def finetune_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    from ..distributed import (
        abort_on_error,
        check_ranks_fit,
        init_world,
        require_ddp,
        share_from_main,
    )
    from ..finetune import read_labeled
    from ..finetune.data import check_task
    from ..recipes.finetune import FinetuneConfig, finetune

    task = check_task(args.task)
    cfg = FinetuneConfig(
        task=task,
        pooling=args.pooling,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        body_lr=args.body_lr,
        freeze=args.freeze,
        freeze_embeddings=args.freeze_embeddings,
        max_length=args.max_length,
        max_steps=args.max_steps,
        seed=args.seed,
        progress=args.progress,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_targets=args.lora_targets,
    )  # fmt: skip  (settings are checked here, before any file is read)

    def read():
        data = read_labeled(args.data, args.text_column, args.label_column, task)
        if args.eval_data:
            return data, read_labeled(args.eval_data, args.text_column, args.label_column, task)
        return data.split(args.val_fraction, args.seed)

    require_ddp(args.zero, args.ddp, "--zero", "finetune")
    if not args.ddp:
        train, val = read()
        finetune(args.model, train, cfg, val=val, out_dir=args.out)
        return 0
    world = init_world(command="finetune")

    def read_on_main():  # on rank 0: a bad file or too many ranks is said once, not once per rank
        check_ranks_fit(cfg.batch_size, world.size)
        return read()

    train, val = share_from_main(world, read_on_main)
    with abort_on_error(world):  # one rank failing ends the job instead of hanging the others
        finetune(args.model, train, cfg, val=val, out_dir=args.out if world.is_main else None,
                 world=world, zero=args.zero)  # fmt: skip
    return 0


def evaluate_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    from ..finetune import read_labeled
    from ..recipes.finetune import evaluate, format_metrics, load_finetuned

    model, tokenizer, labels, max_length = load_finetuned(args.model, args.adapter)
    data = read_labeled(args.data, args.text_column, args.label_column, labels.task)
    m = evaluate(model, tokenizer, data, labels, max_length)
    print(format_metrics(m))
    if m["task"] == "classification":
        print(m["report"])
        print("confusion matrix (rows: true, columns: predicted)", labels.names)
        for name, row in zip(labels.names, m["confusion_matrix"]):
            print(f"  {name:>12}  " + " ".join(f"{v:6d}" for v in row))
        if args.png:
            from ..viz import plot_confusion_matrix

            plot_confusion_matrix(m["confusion_matrix"], labels.names, path=args.png)
            print(f"confusion matrix saved to {args.png}")
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump(m, f, indent=1)
    return 0


def merge_adapter_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    from ..finetune.adapters import merge_adapter_dir
    from ..validation import check_output_dir

    check_output_dir(args.out, "out")
    merge_adapter_dir(args.model, args.adapter, args.out)
    print(f"merged {args.adapter} into {args.model}: saved to {args.out}")
    return 0
