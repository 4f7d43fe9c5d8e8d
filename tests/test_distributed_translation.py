"""``mpirun -n 2 numtrans train-translation --ddp``: the encoder-decoder, data parallel.

Token-budgeted batches have uneven rows and uneven target tokens per rank; each rank's loss is
weighted by its share of the batch's target tokens, and the model equals one process's to
float32 rounding. One exception, a property of attention and not of the data parallelism: the
key bias has an exactly zero gradient (softmax ignores a constant added to every score of a
query), so its float32 gradient is rounding noise, which Adam's g / sqrt(v) turns into steps of
+-lr in either direction. It is compared against that bound instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_distributed import TIMEOUT, _env, mpirun, needs_mpi  # noqa: E402

STEPS = 6


def _args(out, *more, steps=STEPS):
    return ["-m", "numtrans.cli", "train-translation", "--preset", "tiny", "--max-steps",
            str(steps), "--no-progress", "--out-dir", str(out), "--dropout=0.0",
            "--eval_interval=3", "--log_interval=1", "--bleu_sentences=0", *more]  # fmt: skip


@needs_mpi
@pytest.mark.parametrize("zero", [["--zero"], ["--zero", "2"]])  # ZeRO-1, ZeRO-2
def test_train_translation_ddp_equals_one_process(tmp_path, zero):
    from safetensors.numpy import load_file

    ddp, ref = tmp_path / "ddp", tmp_path / "ref"
    job = mpirun(2, *_args(ddp), "--ddp", *zero, cwd=tmp_path)
    assert job.returncode == 0, job.stderr[-2000:]
    assert job.stdout.count("data: ") == 1  # rank 0 alone prepares and prints
    assert "data parallel: 2 ranks share each batch, weighted by target tokens" in job.stdout
    assert f"(ZeRO-{zero[1] if len(zero) > 1 else 1})" in job.stdout
    alone = subprocess.run([sys.executable, *_args(ref)], capture_output=True, text=True,
                           timeout=TIMEOUT, env=_env(), cwd=tmp_path)  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-2000:]
    got, want = (load_file(str(d / "model.safetensors")) for d in (ddp, ref))
    assert sorted(got) == sorted(want)
    history = [json.loads((d / "history.json").read_text()) for d in (ddp, ref)]
    for key in ("train_loss", "val_loss"):
        pairs = [(a, b) for a, b in zip(history[0][key], history[1][key]) if b is not None]
        assert len(pairs) >= 2 and all(abs(a - b) <= 1e-5 * abs(b) for a, b in pairs), key
    assert len(history[1]["lr"]) == STEPS
    lr_sum = sum(history[1]["lr"])  # the most Adam can move a weight in these steps
    for name in want:
        if name.endswith("in_proj_bias"):  # [q | k | v]: the key third's gradient is 0 exactly
            n = len(want[name]) // 3
            key = slice(n, 2 * n)
            assert np.abs(got[name][key] - want[name][key]).max() <= 2 * lr_sum, name
            got[name][key] = want[name][key]
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=2e-6, err_msg=name)


def test_zero_without_ddp_is_one_line(tmp_path):
    job = subprocess.run([sys.executable, *_args(tmp_path / "x"), "--zero"], capture_output=True,
                         text=True, timeout=TIMEOUT, env=_env(), cwd=tmp_path)  # fmt: skip
    assert job.returncode == 2 and job.stderr.count("\n") == 1 and "needs --ddp" in job.stderr


@needs_mpi
def test_a_time_limit_stops_every_rank_at_the_same_step(tmp_path):
    """Rank 0's clock decides (broadcast every 10 steps): the ranks stop together, run the last
    evaluation together (a collective) and the job ends instead of hanging."""
    # (evaluations every 1000 steps: the run stops before one, so it ends with the time limit's)
    args = _args(tmp_path / "t", "--minutes", "0.01", "--eval_interval=1000", "--ddp", steps=100000)
    job = mpirun(2, *args, cwd=tmp_path, timeout=90)
    assert job.returncode == 0, job.stderr[-2000:]
    assert job.stdout.count("time limit; val loss") == 1
    history = json.loads((tmp_path / "t" / "history.json").read_text())
    assert 0 < history["step"][-1] < 1000 and history["step"][-1] % 10 == 0
