"""Switches that change how the graph is recorded: ``no_grad`` and anomaly detection.

>>> import numtrans as nt
>>> x = nt.ones(3, requires_grad=True)
>>> with nt.no_grad():
...     y = x * 2          # not recorded: y has no history
>>> y.requires_grad
False
"""

from __future__ import annotations

import contextlib

_state = {"grad_enabled": True, "anomaly": False}


def is_grad_enabled() -> bool:
    return _state["grad_enabled"]


def set_grad_enabled(mode: bool) -> None:
    _state["grad_enabled"] = bool(mode)


@contextlib.contextmanager
def _grad_mode(mode: bool):
    previous = _state["grad_enabled"]
    _state["grad_enabled"] = mode
    try:
        yield
    finally:
        _state["grad_enabled"] = previous


def no_grad():
    """Context manager (and decorator) that stops recording operations, e.g. for evaluation."""
    return _grad_mode(False)


def enable_grad():
    return _grad_mode(True)


def is_anomaly_enabled() -> bool:
    return _state["anomaly"]


def set_detect_anomaly(mode: bool) -> None:
    """When on, every op checks its output (forward) and its input gradients (backward) and
    raises ``FloatingPointError`` naming the first op that produced NaN or inf.
    ``-inf`` is allowed in forward values, because attention masks use it on purpose."""
    _state["anomaly"] = bool(mode)


@contextlib.contextmanager
def detect_anomaly(mode: bool = True):
    previous = _state["anomaly"]
    _state["anomaly"] = mode
    try:
        yield
    finally:
        _state["anomaly"] = previous
