"""Every numbered tutorial runs top to bottom as a script (in a scratch directory, fast mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 120


def test_there_are_tutorials():
    assert TUTORIALS, "no tutorials/[0-9][0-9]_*.py found"


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.name for p in TUTORIALS])
def test_tutorial_runs(path, tmp_path):
    env = dict(
        os.environ,
        NUMTRANS_TUTORIAL_FAST="1",
        NUMTRANS_TUTORIAL_OUT=str(tmp_path),
        MPLBACKEND="Agg",
    )
    try:
        proc = subprocess.run(
            [sys.executable, str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path.name} did not finish within {TIMEOUT_S} s")
    assert proc.returncode == 0, (
        f"{path.name} exited with {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-3000:]}"
    )
