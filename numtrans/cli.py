"""The ``numtrans`` command.

    numtrans pretrain [--preset quick|shakespeare|large] [--data PATH] [--key=value ...]
    numtrans generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T]
                      [--no-repeat-ngram-size N] [--repetition-penalty P] ...
    numtrans info
    numtrans pretrain-mlm | finetune | evaluate ...          (see numtrans/commands/finetune.py)
    numtrans train-translation | translate ...              (see numtrans/commands/translate.py)
    numtrans sft | dpo | chat ...                            (see numtrans/commands/instruct.py)

Errors print one line, never a traceback: status 2 for bad input (a missing file, a bad setting),
1 for a runtime failure (a non-finite loss, a full disk). ``--debug`` (anywhere on the line) or
``NUMTRANS_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from . import backends
from .commands.overrides import collect_overrides, parse_overrides  # noqa: F401 (public)
from .distributed.world import launcher_rank
from .training.trainer import NonFiniteLossError


def _pretrain(args, extra: list[str]) -> int:
    from .recipes.pretrain import make_config, run

    overrides = collect_overrides(args, extra, ("data", "out_dir", "max_steps"))
    cfg = make_config(args.preset, overrides, args.config)
    run(cfg, resume=args.resume, overwrite=args.overwrite, force=args.force, ddp=args.ddp)
    return 0


def _generate(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    import numpy as np

    from .generation.generate import generate
    from .models.gpt import GPT
    from .recipes.pretrain import start_token
    from .tokenizers import load as load_tokenizer

    tok_path = os.path.join(args.model, "tokenizer.json")
    model = GPT.from_pretrained(args.model)
    if not os.path.isfile(tok_path):
        raise FileNotFoundError(f"no tokenizer.json in {args.model}")
    tokenizer = load_tokenizer(tok_path)
    if tokenizer.vocab_size != model.config.vocab_size:  # found now, not partway through a sample
        raise ValueError(
            f"{tok_path} has {tokenizer.vocab_size} tokens but the model in {args.model} has "
            f"vocab_size={model.config.vocab_size}: they do not belong together"
        )
    prompt = tokenizer.encode(args.prompt) if args.prompt else [start_token(tokenizer)]
    if not prompt:
        raise ValueError("the prompt encodes to no tokens")

    def stream(tokens, _step):
        print(tokenizer.decode(tokens.tolist()), end="", flush=True)

    print(args.prompt, end="")
    generate(
        model,
        np.array([prompt]),
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        rng=args.seed,
        callback=stream,
        use_cache=not args.no_cache,
        no_repeat_ngram_size=args.no_repeat_ngram_size,
        repetition_penalty=args.repetition_penalty,
    )
    print()
    return 0


def _info(args, extra) -> int:
    from . import show_config

    show_config()
    return 0


# numtrans/commands/<name>.py modules whose register(subparsers) adds their commands:
# finetune (pretrain-mlm, finetune, evaluate), translate (train-translation, translate), serve,
# qa (train-qa, answer), kb (index, search), summarize, instruct (sft, dpo, chat), compress
# (distill, quantize).
_COMMAND_MODULES = (
    "finetune",
    "translate",
    "serve",
    "qa",
    "kb",
    "summarize",
    "instruct",
    "compress",
    "mixture",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="numtrans", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "pretrain",
        help="pretrain a character-level GPT (the main job)",
        description="Pretrain a character-level GPT on a text corpus. Any field "
        "of PretrainConfig can be set with --key=value (e.g. --n_layer=6).",
    )
    p.add_argument("--preset", default="quick", help="quick | shakespeare | large")
    p.add_argument("--data", help="a bundled corpus name or a path to a UTF-8 text file")
    p.add_argument("--config", help="a JSON file of settings")
    p.add_argument("--out-dir", dest="out_dir", help="where the model is saved")
    p.add_argument("--max-steps", dest="max_steps", type=int, help="training steps")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out-dir")
    p.add_argument("--force", action="store_true", help="with --resume: accept another corpus")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--ddp", action="store_true", help="data parallel over the ranks of mpirun "
                   "(mpirun -n 2 numtrans pretrain ... --ddp; pip install 'numtrans[mpi]')")  # fmt: skip
    p.set_defaults(func=_pretrain)

    g = sub.add_parser("generate", help="sample text from a saved model")
    g.add_argument("--model", required=True, help="a directory written by `numtrans pretrain`")
    g.add_argument("--prompt", default="", help="text to continue")
    g.add_argument("--max-new-tokens", type=int, default=300)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--no-cache", action="store_true", help="recompute keys/values every step")
    g.add_argument("--no-repeat-ngram-size", type=int, default=0, metavar="N",
                   help="never repeat an n-gram of N tokens (0: off)")  # fmt: skip
    g.add_argument("--repetition-penalty", type=float, default=1.0, metavar="P",
                   help="divide (or multiply) the logits of tokens already seen by P (1.0: off)")  # fmt: skip
    g.set_defaults(func=_generate)

    i = sub.add_parser("info", help="versions and available backends")
    i.set_defaults(func=_info)

    # the other command families, one module each under numtrans/commands/ with a register(sub)
    for name in _COMMAND_MODULES:
        importlib.import_module(f".commands.{name}", __package__).register(sub)
    return parser


# Commands that run no model (or print their own report) skip the backend line; those whose
# standard output is their product (text to pipe on) print it on a terminal's stderr only.
_QUIET_COMMANDS = {"info"}
_PRODUCT_COMMANDS = {"generate", "translate", "answer", "ask", "summarize", "search", "chat"}


def _say_backend(command: str) -> None:
    """First line of every model command: which code runs attention (and GELU's erf)."""
    if command in _QUIET_COMMANDS or launcher_rank() > 0:  # (under mpirun rank 0 alone speaks)
        return
    if command in _PRODUCT_COMMANDS:
        if sys.stderr.isatty():
            print(backends.describe(), file=sys.stderr)
        return
    print(backends.describe(), flush=True)


# Disk-level failures are runtime failures (exit 1); other OSErrors are a bad path (exit 2).
_RUNTIME_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


def _debug_requested(argv: list[str]) -> tuple[bool, list[str]]:
    """``--debug`` anywhere on the line (or ``NUMTRANS_DEBUG=1``) shows tracebacks."""
    flag = "--debug" in argv
    env = os.environ.get("NUMTRANS_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    return flag or env, [a for a in argv if a != "--debug"]


def main(argv: list[str] | None = None) -> int:
    debug, argv = _debug_requested(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    where = f"numtrans {args.command}: error:"
    try:
        _say_backend(args.command)
        return args.func(args, extra)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            raise
        if isinstance(exc, (NonFiniteLossError, FloatingPointError)):  # a runtime failure
            print(f"{where} {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, OSError) and exc.errno in _RUNTIME_ERRNOS:
            # every file goes through io.atomic_write: what was saved before is intact
            print(f"{where} {exc} (files already saved are intact; nothing was half-written)",
                  file=sys.stderr)  # fmt: skip
            return 1
        if isinstance(exc, (OSError, ValueError, KeyError, TypeError, IndexError)):  # bad input
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"{where} {msg}", file=sys.stderr)
            return 2
        # anything else is a bug in numtrans: one line, and how to see the traceback
        print(f"{where} {type(exc).__name__}: {exc} (run with --debug or NUMTRANS_DEBUG=1 "
              "for the traceback)", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
