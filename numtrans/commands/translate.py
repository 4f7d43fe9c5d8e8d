"""``numtrans translate`` and ``numtrans train-translation``.

    numtrans train-translation [--preset tiny|small] [--out-dir DIR] [--minutes M] [--key=value ...]
    numtrans translate --model DIR "text" ["more text" ...] [--beam N | --greedy] [--nbest K]
                       [--no-repeat-ngram-size N] [--repetition-penalty P]

``train-translation`` trains an English -> Chinese Transformer on the bundled Tatoeba pairs
(``numtrans.recipes.translation``; any field of ``TranslationConfig`` can be set with
``--key=value``) and saves a model directory that ``translate`` reads. ``translate`` prints one
translation per line, or with ``--nbest K`` the K best as ``score<TAB>translation`` lines.
A text of ``-`` reads the sentences from standard input, one a line. ``--no-repeat-ngram-size 2``
forbids any repeated pair of tokens (no 看看看看 loops); ``--repetition-penalty 1.2`` makes tokens
already produced less likely (``numtrans.generation.logits_process``).
"""

from __future__ import annotations

import sys

from .overrides import ZERO_OPTION


def register(subparsers) -> None:
    """Add the ``translate`` and ``train-translation`` parsers to ``subparsers``."""
    t = subparsers.add_parser(
        "translate",
        help="translate English to Chinese with a trained model",
        description="Translate sentences with a model saved by `numtrans train-translation`.",
    )
    t.add_argument("--model", required=True, help="a directory written by train-translation")
    t.add_argument("text", nargs="+", help="sentence(s) to translate; '-' reads stdin")
    t.add_argument("--beam", type=int, default=None, help="beam width (default: the model's)")
    t.add_argument("--greedy", action="store_true", help="greedy decoding (beam width 1)")
    t.add_argument("--nbest", type=int, default=1, help="print the K best translations")
    t.add_argument("--length-penalty", type=float, default=None, help="GNMT alpha")
    t.add_argument("--max-new-tokens", type=int, default=None)
    t.add_argument(
        "--no-repeat-ngram-size", type=int, default=None, metavar="N",
        help="never repeat an n-gram of N tokens (0: off; default: the model's)",
    )  # fmt: skip
    t.add_argument(
        "--repetition-penalty", type=float, default=None, metavar="P",
        help="divide (or multiply) the logits of tokens already produced by P (1.0: off)",
    )  # fmt: skip
    t.set_defaults(func=translate_command)

    p = subparsers.add_parser(
        "train-translation",
        help="train an English -> Chinese Transformer on the Tatoeba pairs",
        description="Train a Seq2SeqTransformer on the bundled Tatoeba English-Chinese pairs. "
        "Any field of TranslationConfig can be set with --key=value (e.g. --d_model=128).",
    )
    p.add_argument("--preset", default="small", help="tiny | small")
    p.add_argument("--out-dir", dest="out_dir", help="where the model directory is written")
    p.add_argument("--max-steps", dest="max_steps", type=int, help="training steps")
    p.add_argument("--minutes", dest="time_limit", type=float, help="training time limit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--ddp", action="store_true",
                   help="data parallel over the ranks of mpirun (mpirun -n 2 numtrans "
                   "train-translation ... --ddp); rank 0 prints and saves")  # fmt: skip
    p.add_argument("--zero", **ZERO_OPTION)
    p.set_defaults(func=train_command)


def _texts(args) -> list[str]:
    if args.text == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin]
    else:
        texts = list(args.text)
    if not any(t.strip() for t in texts):
        raise ValueError("nothing to translate: give a non-empty sentence")
    return texts  # blank lines stay: output line i always answers input line i


def translate_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    if args.greedy and args.beam not in (None, 1):
        raise ValueError(f"--greedy and --beam {args.beam} contradict each other")
    if args.beam is not None and args.beam < 1:
        raise ValueError(f"--beam must be >= 1, got {args.beam}")
    if args.nbest < 1:
        raise ValueError(f"--nbest must be >= 1, got {args.nbest}")
    if args.greedy and args.nbest > 1:
        raise ValueError("--nbest needs beam search; drop --greedy")
    from ..generation.logits_process import check_no_repeat_ngram_size, check_repetition_penalty

    # checked before the model is loaded, with the flag's name in the message
    for flag, value, check in (
        ("--no-repeat-ngram-size", args.no_repeat_ngram_size, check_no_repeat_ngram_size),
        ("--repetition-penalty", args.repetition_penalty, check_repetition_penalty),
    ):
        if value is not None:
            try:
                check(value)
            except ValueError as e:
                raise ValueError(f"{flag}: {e}") from None
    from ..translation import Translator

    translator = Translator.load(args.model)
    texts = _texts(args)
    kwargs = {
        "alpha": args.length_penalty,
        "max_new_tokens": args.max_new_tokens,
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "repetition_penalty": args.repetition_penalty,
    }
    beam = 1 if args.greedy else args.beam
    if args.nbest > 1:
        texts = [t for t in texts if t.strip()]
        for text, found in zip(
            texts, translator.translate_nbest(texts, args.nbest, beam_size=beam, **kwargs)
        ):
            if len(texts) > 1:
                print(f"# {text}")
            for translation, score in found:
                print(f"{score:.4f}\t{translation}")
        return 0
    # blank input lines give blank output lines (they are not sent to the model)
    filled = [i for i, t in enumerate(texts) if t.strip()]
    outputs = [""] * len(texts)
    found = translator.translate([texts[i] for i in filled], beam_size=beam, **kwargs)
    for i, translation in zip(filled, found):
        outputs[i] = translation
    for line in outputs:
        print(line)
    return 0


def train_command(args, extra: list[str]) -> int:
    from ..distributed import (
        abort_on_error,
        init_world,
        quiet_unless_main,
        require_ddp,
        share_from_main,
    )
    from ..recipes.translation import make_config, run
    from .overrides import collect_overrides

    overrides = collect_overrides(args, extra, ("out_dir", "max_steps", "time_limit"))
    cfg = make_config(args.preset, overrides)
    require_ddp(args.zero, args.ddp, "--zero", "train-translation")
    if not args.ddp:
        run(cfg)
        return 0
    import dataclasses

    from ..recipes.translation import prepare
    from ..validation import check_output_dir

    world = init_world(command="train-translation")

    def read():  # on rank 0: a bad corpus or out_dir is said once, not once per rank
        check_output_dir(cfg.out_dir)
        return prepare(cfg)

    data = share_from_main(world, read)  # splits, tokenizers and batcher, on every rank
    if not world.is_main:
        cfg = dataclasses.replace(cfg, progress=False)
    with abort_on_error(world), quiet_unless_main(world):  # rank 0 logs for the job
        run(cfg, world=world, zero=args.zero, data=data)
    return 0
