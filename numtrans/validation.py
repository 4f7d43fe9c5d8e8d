"""Settings are checked once, where a config is built: a bad value is a one-line ValueError that
names the field, the value and what is allowed (``batch_size=0 is invalid: it must be a whole
number >= 1``), instead of a ZeroDivisionError or a reshape error steps later.

A rule is ``(types, ok, allowed)``: the value must be an instance of ``types`` (``bool`` never
counts as a number), ``ok(value)`` must hold, and ``allowed`` says so in words. Each config lists
its rules beside its fields (``recipes/pretrain.py``, ``recipes/mlm.py``, ``recipes/translation.py``).
"""

from __future__ import annotations

import math
import os

POSITIVE_INT = ((int,), lambda v: v >= 1, "a whole number >= 1")
NONNEG_INT = ((int,), lambda v: v >= 0, "a whole number >= 0")
ANY_INT = ((int,), lambda v: True, "a whole number")
POSITIVE_FLOAT = ((int, float), lambda v: v > 0 and math.isfinite(v), "a finite number > 0")
NONNEG_FLOAT = ((int, float), lambda v: v >= 0 and math.isfinite(v), "a finite number >= 0")
FRACTION = ((int, float), lambda v: 0 < v < 1, "a number strictly between 0 and 1")
PROBABILITY = ((int, float), lambda v: 0 <= v < 1, "a number in [0, 1)")
BOOL = ((bool,), lambda v: True, "true or false")
TEXT = ((str,), lambda v: bool(v), "non-empty text")


def one_of(*choices):
    """A rule: the value must be one of ``choices``."""
    return ((object,), lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


def optional(rule):
    """The same rule, or None."""
    types, ok, allowed = rule
    return (types + (type(None),), lambda v: v is None or ok(v), f"None or {allowed}")


def check_settings(cfg, rules: dict) -> None:
    """Raise ``ValueError("setting name=value is invalid: it must be ...")`` for the first bad
    field of ``cfg`` (a dataclass instance) according to ``rules``."""
    for name, (types, ok, allowed) in rules.items():
        value = getattr(cfg, name)
        wrong_type = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if wrong_type or not ok(value):
            raise ValueError(f"setting {name}={value!r} is invalid: it must be {allowed}")


def check_output_dir(path: str, what: str = "out_dir") -> None:
    """Fail before training, not after it: ``path`` must be (or become) a directory we can write.
    The nearest existing ancestor must be a writable directory."""
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe.rstrip(os.sep))
    probe = probe or "."
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{what} {path!r} exists and is not a directory")
    if not os.path.isdir(probe):
        raise ValueError(f"{what} {path!r}: {probe!r} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path!r}: cannot write in {probe!r}")
