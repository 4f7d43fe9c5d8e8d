"""``numtrans pretrain-mixture``: a byte-level BPE GPT on the cleaned English + Chinese mixture.

    numtrans pretrain-mixture [--preset quick|base] [--out-dir DIR] [--max-steps N] [--no-clean]
                              [--compare] [--key=value ...]

A command of its own rather than a ``pretrain`` preset: ``pretrain`` is built around one
character-level corpus (its tokenizer, data fingerprint, resume checks and sample all assume it),
while this job reads five sources, cleans them and learns a BPE vocabulary, which a preset (a
set of ``PretrainConfig`` values) cannot express. ``--compare`` trains the same model twice,
with and without cleaning, and prints both validation losses on the same cleaned held-out set.
Every ``MixtureConfig`` field can be set with ``--key=value`` (``--n_layer=6``).
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain-mixture", help="pretrain a byte-level BPE GPT on cleaned English + Chinese",
        description="Pretrain a GPT with a byte-level BPE on Tatoeba, the sentiment sentences, "
        "Tiny Shakespeare and the Four Books (training splits), cleaned before tokenisation. "
        "Any MixtureConfig field can be set with --key=value.",
    )  # fmt: skip
    p.add_argument("--preset", default="quick", help="quick (about 4 minutes) | base (30)")
    p.add_argument("--out-dir", dest="out_dir", help="where the model is saved")
    p.add_argument("--max-steps", dest="max_steps", type=int, help="training steps")
    p.add_argument("--no-clean", action="store_true", help="train on the uncleaned documents")
    p.add_argument("--compare", action="store_true", help="train with and without cleaning")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=mixture_command)


def mixture_command(args, extra: list[str]) -> int:
    from ..recipes.mixture import compare, make_config, run
    from .overrides import collect_overrides

    overrides = collect_overrides(args, extra, ("out_dir", "max_steps"))
    if args.no_clean:
        if args.compare:
            raise ValueError("--compare trains both ways: leave out --no-clean")
        overrides["clean"] = False
    cfg = make_config(args.preset, overrides)
    (compare if args.compare else run)(cfg, say=lambda text: print(text, flush=True))
    return 0
