"""One seeded random generator for the whole library (initialisation, dropout, sampling).

``numtrans.manual_seed(s)`` makes everything that draws random numbers reproducible.
Functions that take a ``generator=`` argument use that ``np.random.Generator`` instead.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator and return it."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    return _generator


def get_rng_state() -> dict:
    """The generator's state as a JSON-serialisable dict (saved in checkpoints)."""
    return _generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    global _generator
    bitgen = getattr(np.random, state["bit_generator"])()
    bitgen.state = state
    _generator = np.random.Generator(bitgen)
