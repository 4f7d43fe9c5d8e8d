"""benchmarks/scaling.py runs: its plan, one timed step per implementation, the plot, and a
one-line error for a bad axis. Tiny settings only (the real sweep is minutes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "scaling.py"


def run(*argv, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture(scope="module")
def scaling():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import scaling as module

        yield module
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_dry_run_prints_the_plan_times_one_step_and_writes_the_plot(tmp_path):
    png = tmp_path / "scaling.png"
    result = run("--quick", "--dry-run", "--no-torch", "--plot", str(png))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for axis, values in (("width", (64, 512)), ("depth", (2, 12)), ("block", (64, 1024))):
        for v in values:
            assert f"| {axis} | {v} |" in out
    timed = [line for line in out.splitlines() if "| 16 | 1 |" in line]  # block 16, batch 1
    assert len(timed) == 1
    cells = [c.strip() for c in timed[0].split("|")[1:-1]]
    assert float(cells[9]) > 0 and float(cells[12]) > 0  # numtrans wall and CPU ms
    assert cells[10] == cells[13] == "-"  # no torch columns
    pytest.importorskip("matplotlib")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_torch_the_rows_are_numtrans_only(tmp_path):
    (tmp_path / "torch.py").write_text("raise ImportError('no torch here')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH")) if p)
    result = run("--dry-run", "--sweeps", "depth", env=env)
    assert result.returncode == 0, result.stderr
    assert "PyTorch is not installed: numtrans rows only" in result.stdout
    assert "| width |" not in result.stdout and "| depth | 2 |" in result.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sweeps", "width,height"], "unknown axis ['height']"),
        (["--threads", "0"], "--threads must be >= 1"),
        (["--plot", "/nonexistent-folder/x.png", "--dry-run"], "its folder does not exist"),
    ],
)
def test_bad_arguments_give_one_line(argv, message):
    result = run(*argv)
    assert result.returncode == 2 or result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_flops_are_the_projects_counter_and_the_points_share_a_token_budget(scaling):
    from numtrans.models.counting import gpt_flops_per_token
    from numtrans.models.gpt import GPTConfig

    args = scaling.parse_args(["--quick"])
    points = scaling.plan(args)
    assert {p["batch"] * p["model"]["block_size"] for p in points} == {1024}
    for p in points:
        per_token, _, share = scaling.flops(p["model"])
        assert per_token == gpt_flops_per_token(GPTConfig(**p["model"]))
        assert p["model"]["n_embd"] // p["model"]["n_head"] == scaling.HEAD_SIZE
    shares = [scaling.flops(p["model"])[2] for p in points if p["axis"] == "block"]
    assert shares == sorted(shares) and shares[-1] > 0.5  # attention takes over with T


def test_one_timed_step_of_each_implementation(scaling):
    pytest.importorskip("torch")
    args = scaling.parse_args(["--dry-run", "--steps", "1", "--warmup", "0"])
    model = dict(scaling.BASE, n_embd=32, n_head=1, n_layer=1, block_size=8)
    point = {"axis": "width", "value": 32, "model": model, "batch": 2}
    times = {
        impl: {("width", 32): scaling.time_point(impl, point, args)}
        for impl in ("numtrans", "torch")
    }
    (row,) = scaling.rows_for([point], times)
    for impl in ("numtrans", "torch"):
        assert row[impl]["ms"] > 0 and row[impl]["cpu_ms"] > 0
        assert row[impl]["gflops"] == pytest.approx(row["gflop"] / row[impl]["ms"] * 1e3)
        assert row[impl]["tok_s"] == pytest.approx(16 / row[impl]["ms"] * 1e3)
