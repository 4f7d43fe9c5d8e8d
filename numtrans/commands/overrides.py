"""``--key=value`` settings on the command line, shared by every training command.

Kept below ``cli.py`` so that the command families (``commands/*.py``) can use it without
importing the top-level command (which imports them: that would be a cycle).
"""

from __future__ import annotations

import ast


def parse_overrides(items: list[str]) -> dict:
    """``--n_layer=6 --dropout 0.1 --top_k=None`` -> {"n_layer": 6, "dropout": 0.1, "top_k": None}.

    Values are Python literals; ``true`` / ``false`` (any case, as in JSON and config files) are
    booleans too."""
    out, i = {}, 0
    while i < len(items):
        item = items[i]
        if not item.startswith("--"):
            raise ValueError(f"unexpected argument {item!r}; settings look like --key=value")
        key, eq, value = item[2:].partition("=")
        if not eq:
            if i + 1 >= len(items) or items[i + 1].startswith("--"):
                raise ValueError(f"setting --{key} needs a value (--{key}=VALUE)")
            value, i = items[i + 1], i + 1
        if value.lower() in ("true", "false"):
            out[key.replace("-", "_")] = value.lower() == "true"
            i += 1
            continue
        try:
            out[key.replace("-", "_")] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.replace("-", "_")] = value  # a plain string
        i += 1
    return out


def collect_overrides(args, extra: list[str], keys: tuple[str, ...]) -> dict:
    """Settings from ``--key=value`` items plus the named options (``keys``, ``--no-progress``)
    that were given on the command line; shared by every training command."""
    overrides = parse_overrides(extra)
    for key in keys:
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.no_progress:
        overrides["progress"] = False
    return overrides


# ``--zero [STAGE]`` of the data-parallel training commands (with ``--ddp``): ``--zero`` alone is
# ZeRO-1, as it was before stage 2 existed; ``--zero 2`` is ZeRO-2; without it, plain DDP (0)
ZERO_OPTION = dict(
    nargs="?", type=int, const=1, default=0, choices=[1, 2], metavar="STAGE",
    help="with --ddp: --zero (ZeRO-1) keeps 1/P of AdamW's state per rank; --zero 2 (ZeRO-2) "
    "also 1/P of the gradients",
)  # fmt: skip
