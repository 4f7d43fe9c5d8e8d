"""Issue 14: how the ``numtrans`` command reports failures. One line on stderr and status 2 for
bad input, 1 for a runtime failure (disk full, a bug), the traceback only with ``--debug`` or
``NUMTRANS_DEBUG=1``."""

from __future__ import annotations

import errno

import pytest

import numtrans
from numtrans import cli


def _failing_info(monkeypatch, exc):
    def show_config(*a, **k):
        raise exc

    monkeypatch.setattr(numtrans, "show_config", show_config)


@pytest.mark.parametrize(
    "exc, status, text",
    [
        (OSError(errno.ENOSPC, "No space left on device", "runs/x/model.safetensors"), 1,
         "No space left on device: 'runs/x/model.safetensors' (files already saved are intact"),
        (PermissionError(errno.EACCES, "Permission denied", "/root/x"), 2, "Permission denied"),
        (ValueError("batch_size must be at least 1, got 0"), 2, "batch_size must be at least 1"),
        (RuntimeError("an internal bug"), 1, "RuntimeError: an internal bug (run with --debug"),
        (MemoryError("out of memory"), 1, "MemoryError: out of memory"),
    ],
)  # fmt: skip
def test_one_line_and_status(monkeypatch, capsys, exc, status, text):
    monkeypatch.delenv("NUMTRANS_DEBUG", raising=False)
    _failing_info(monkeypatch, exc)
    assert cli.main(["info"]) == status
    err = capsys.readouterr().err
    assert err.startswith("numtrans info: error: ") and text in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("how", ["flag-after", "flag-before", "env"])
def test_debug_shows_the_traceback(monkeypatch, how):
    _failing_info(monkeypatch, RuntimeError("an internal bug"))
    argv = {"flag-after": ["info", "--debug"], "flag-before": ["--debug", "info"]}.get(
        how, ["info"]
    )
    if how == "env":
        monkeypatch.setenv("NUMTRANS_DEBUG", "1")
    else:
        monkeypatch.delenv("NUMTRANS_DEBUG", raising=False)
    with pytest.raises(RuntimeError, match="an internal bug"):
        cli.main(argv)


def test_debug_zero_means_off(monkeypatch, capsys):
    monkeypatch.setenv("NUMTRANS_DEBUG", "0")
    _failing_info(monkeypatch, RuntimeError("x"))
    assert cli.main(["info"]) == 1
