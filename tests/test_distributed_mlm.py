"""``mpirun -n 2 numtrans pretrain-mlm --ddp``: masked-LM pretraining, data parallel.

The MLM loss is a mean over masked tokens, whose count differs between the two shards of a
batch: weighting each rank's loss by its share of them (``ShardBatcher(count=labelled_tokens)``)
gives the one-process model (rows would weight the shards differently: the unit test below).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numtrans import distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from test_distributed import TIMEOUT, _env, mpirun, needs_mpi  # noqa: E402

TINY = ["--vocab_size=60", "--hidden_size=16", "--num_hidden_layers=1", "--num_attention_heads=2",
        "--intermediate_size=32", "--max_length=16", "--batch_size=5", "--dropout=0.0",
        "--eval_interval=3", "--eval_batches=2", "--log_interval=1", "--warmup_steps=1"]  # fmt: skip


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    words = "the a cat dog sat ran on under mat log big small red".split()
    lines = [" ".join(rng.choice(words, size=rng.integers(3, 12))) for _ in range(80)]
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _args(corpus, out, *more):
    return ["-m", "numtrans.cli", "pretrain-mlm", "--data", str(corpus), "--out", str(out),
            "--max-steps", "6", *TINY, *more]  # fmt: skip


@needs_mpi
@pytest.mark.parametrize("zero", [[], ["--zero"], ["--zero", "2"]])  # plain, ZeRO-1, ZeRO-2
def test_pretrain_mlm_ddp_equals_one_process(tmp_path, corpus, zero):
    from safetensors.numpy import load_file

    ddp, ref = tmp_path / "ddp", tmp_path / "ref"
    job = mpirun(2, *_args(corpus, ddp), "--ddp", *zero, cwd=tmp_path)
    assert job.returncode == 0, job.stderr[-2000:]
    assert job.stdout.count("MLM pretraining: ") == 1  # rank 0 alone prints
    assert "data parallel: 2 ranks share each global batch of 5, weighted by masked" in job.stdout
    assert ("(ZeRO-1)" in job.stdout, "(ZeRO-2)" in job.stdout) == (zero == ["--zero"], "2" in zero)
    alone = subprocess.run([sys.executable, *_args(corpus, ref)], capture_output=True, text=True,
                           timeout=TIMEOUT, env=_env(), cwd=tmp_path)  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert (ddp / "vocab.txt").read_text() == (ref / "vocab.txt").read_text()
    got, want = (load_file(str(d / "model.safetensors")) for d in (ddp, ref))
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=3e-6, err_msg=name)


def test_mlm_shards_are_weighted_by_their_masked_tokens():
    """The weights on a batch whose masked tokens are unevenly split: m_r P / M, summing to P."""
    labels = np.full((5, 4), -100)
    labels[0, :3] = 1  # 3 masked tokens in row 0
    labels[3, 1] = 2  # and 1 in row 3: shards of rows 0-1 and 2-4 hold 3 and 1 of M = 4
    batch = {"input_ids": np.zeros((5, 4), int), "labels": labels}
    weights = []
    for rank in range(2):
        get = dist.shard_batcher(lambda split, rng: batch, rank, 2, even=False,
                                 count=dist.labelled_tokens)  # fmt: skip
        shard = get("train", None)
        assert get.global_count == 4 and get.global_rows == 5
        trainer = dist.DistributedTrainer.__new__(dist.DistributedTrainer)
        trainer.get_batch, trainer.world = get, type("W", (), {"size": 2})()
        weights.append(trainer.shard_weight(shard))
    assert weights == [1.5, 0.5]  # 3 * 2 / 4 and 1 * 2 / 4 (rows would say 0.8 and 1.2)


def test_zero_without_ddp_is_one_line(tmp_path, corpus):
    job = subprocess.run([sys.executable, *_args(corpus, tmp_path / "x"), "--zero"],
                         capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
                         cwd=tmp_path)  # fmt: skip
    assert job.returncode == 2 and job.stderr.count("\n") == 1 and "needs --ddp" in job.stderr
