"""ZeRO-1 (``numtrans.distributed.zero``): the optimiser state sharded over the ranks.

Under ``mpirun -n 2``: the same parameters as plain DDP bit for bit, with each rank holding about
half of AdamW's state; a checkpoint written with ZeRO resumes in one process and back. In one
process: the partition, the step that only touches owned parameters, the state-dict errors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numtrans import distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from test_distributed import (  # noqa: E402
    TIMEOUT,
    WORKER,
    _env,
    _pretrain_args,
    corpus,  # noqa: F401 (a fixture)
    mpirun,
    needs_mpi,
)
from test_distributed_worker import build  # noqa: E402


@needs_mpi
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_zero1_is_plain_ddp_bit_for_bit_with_half_the_state(tmp_path, dtype):
    runs = {}
    for how in ("bucketed", "zero"):
        out = str(tmp_path / f"{how}.safetensors")
        job = mpirun(2, str(WORKER), "train", out, dtype, "4", how)
        assert job.returncode == 0, job.stderr[-2000:]
        from safetensors.numpy import load_file

        runs[how] = load_file(out), json.loads(Path(out + ".json").read_text())
    (ddp, ddp_info), (zero, zero_info) = runs["bucketed"], runs["zero"]
    for name in ddp:  # the owner's update is the same arithmetic on the same numbers
        np.testing.assert_array_equal(zero[name], ddp[name], err_msg=name)
    for key in ("train_loss", "val_loss", "lr"):
        assert zero_info["history"][key] == ddp_info["history"][key]
    full = ddp_info["state_bytes"]  # plain DDP: every rank holds all of m and v
    assert full[0] == full[1] > 0
    shards = zero_info["state_bytes"]
    assert sum(shards) == full[0] and max(shards) <= 0.55 * full[0], (shards, full)


@needs_mpi
def test_zero1_checkpoints_are_plain_checkpoints(tmp_path, corpus):  # noqa: F811
    """2 ranks with ZeRO-1 for 6 steps, resumed in one process to 9, then again on 2 ranks with
    ZeRO-1 to 12: the weights match one process trained alike, and the saved optimiser state is
    the whole of it (one process could resume from it)."""
    from safetensors.numpy import load_file

    zero, ref = tmp_path / "zero", tmp_path / "ref"
    for ranks, steps in [(2, 6), (1, 9), (2, 12)]:
        resume = ["--resume"] * (steps > 6)
        args = _pretrain_args(corpus, zero, steps)
        if ranks == 2:
            job = mpirun(2, *args, "--ddp", "--ddp_zero=true", *resume, cwd=tmp_path)
        else:
            job = subprocess.run([sys.executable, *args, *resume], capture_output=True, text=True,
                                 timeout=TIMEOUT, env=_env(), cwd=tmp_path)  # fmt: skip
        assert job.returncode == 0, job.stderr[-2000:]
        assert (ranks == 1) or "optimiser state sharded (ZeRO-1)" in job.stdout
        alone = subprocess.run([sys.executable, *_pretrain_args(corpus, ref, steps), *resume],
                               capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
                               cwd=tmp_path)  # fmt: skip
        assert alone.returncode == 0, alone.stderr[-2000:]
        got, want = (load_file(str(d / "model.safetensors")) for d in (zero, ref))
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=2e-6, err_msg=name)
        ckpt = zero / "checkpoints" / f"step-{steps:06d}"
        state = json.loads((ckpt / "state.json").read_text())
        saved = load_file(str(ckpt / "optimizer.safetensors"))
        moments = [k for k in saved if "exp_avg" in k]
        n_params = len(state["optimizer"]["param_groups"][0]["params"]) + len(
            state["optimizer"]["param_groups"][1]["params"]
        )
        assert len(moments) == 2 * n_params  # m and v of every parameter, gathered from both


def test_ddp_zero_without_ddp_is_one_line(tmp_path, corpus):  # noqa: F811
    job = subprocess.run([sys.executable, *_pretrain_args(corpus, tmp_path / "x", 3),
                          "--ddp_zero=true"], capture_output=True, text=True, timeout=TIMEOUT,
                         env=_env(), cwd=tmp_path)  # fmt: skip
    assert job.returncode == 2 and job.stderr.count("\n") == 1, job.stderr
    assert "needs --ddp" in job.stderr and not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- in one process
def test_partition_balances_by_size_and_is_deterministic():
    sizes = [1000, 10, 10, 500, 500, 3, 990]
    owner = dist.partition_parameters(sizes, 2)
    assert owner == dist.partition_parameters(sizes, 2)
    load = [sum(s for s, r in zip(sizes, owner) if r == k) for k in range(2)]
    assert load == [1510, 1503]  # largest first, each to the lighter rank (ties: lower rank)
    assert dist.partition_parameters(sizes, 1) == [0] * len(sizes)
    assert set(dist.partition_parameters(sizes, 7)) == set(range(7))


class _RankOf:
    """A stand-in communicator: this process plays rank ``rank`` of ``size``. ``Allgatherv``
    "receives" 7.0 for every number the other ranks own; ``gather`` sees only this rank's part."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size

    def Allgatherv(self, sendbuf, recvbuf):
        flat, counts, displs, _ = recvbuf
        mine = flat[displs[self.rank] : displs[self.rank] + counts[self.rank]].copy()
        flat[...] = 7.0
        flat[displs[self.rank] : displs[self.rank] + counts[self.rank]] = mine

    def gather(self, obj, root=0):
        return [obj] if self.rank == root else None


def _grads(model, seed=0):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.grad = rng.standard_normal(p.data.shape).astype(p.data.dtype)


def test_a_rank_updates_and_keeps_state_for_its_own_parameters_only():
    pytest.importorskip("mpi4py")
    model, optimizer, _ = build("float64")
    plain_model, plain_opt, _ = build("float64")
    zero = dist.ZeroRedundancyOptimizer.from_optimizer(optimizer, _RankOf(1, 2))
    for step in range(2):
        _grads(model, step)
        _grads(plain_model, step)
        zero.step()
        plain_opt.step()
    owned = [p for p in zero.params if zero.owns(p)]
    assert 0 < len(owned) < len(zero.params) and set(map(id, zero.state)) == set(map(id, owned))
    for p, q in zip(model.parameters(), plain_model.parameters()):
        if zero.owns(p):  # the plain optimiser's update, exactly
            np.testing.assert_array_equal(p.data, q.data)
        else:  # not updated here: the owner's value comes from the all-gather
            np.testing.assert_array_equal(p.data, 7.0)
        assert p.grad is not None  # the hidden gradients are given back
    with pytest.raises(RuntimeError, match="call consolidate_state_dict"):
        zero.state_dict()
    zero.consolidate_state_dict(to=1)  # (alone: this rank's shard is the whole "gathered" state)
    shard = zero.state_dict()
    assert len(shard["state"]) == len(owned)
    # a full state dict (the plain optimiser's) loads as this rank's shard of it
    zero.load_state_dict(plain_opt.state_dict())
    assert set(map(id, zero.state)) == set(map(id, owned))
    with pytest.raises(RuntimeError, match="consolidate"):
        zero.state_dict()  # loading (like stepping) makes a gathered state out of date


def test_zero1_in_a_world_of_one_is_the_plain_optimiser():
    pytest.importorskip("mpi4py")
    model, optimizer, scheduler = build("float32")
    plain_model, plain_opt, plain_sched = build("float32")
    zero = dist.ZeroRedundancyOptimizer.from_optimizer(optimizer, dist.self_world().comm)
    for step in range(3):
        _grads(model, step)
        _grads(plain_model, step)
        zero.step()
        scheduler.step()  # the scheduler drives the wrapped optimiser's groups, as usual
        plain_opt.step()
        plain_sched.step()
        if step == 1:  # a parameter's array replaced (not in place) between steps: still works
            first = next(iter(model.parameters()))
            first.data = first.data + 0.5
            next(iter(plain_model.parameters())).data += 0.5
    for p, q in zip(model.parameters(), plain_model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    flat = zero._gather_plans[0][0]  # the parameters are views into the all-gather's buffer
    assert all(np.shares_memory(p.data, flat) for p in model.parameters())
    assert zero.param_groups[0]["lr"] == plain_opt.param_groups[0]["lr"]
    zero.consolidate_state_dict()
    assert dist.optimizer_state_bytes(zero) == dist.optimizer_state_bytes(plain_opt) > 0
    assert "owns" in repr(zero)


@needs_mpi
def test_the_ddp_benchmark_measures_what_zero1_and_zero2_save(tmp_path):
    out = tmp_path / "ddp.json"
    job = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "benchmarks" / "ddp.py"),
                          "--ranks", "2", "--zero", "--steps", "1", "--warmup", "0",
                          "--micro-batch", "2", "--n-embd", "32", "--json", str(out)],
                         capture_output=True, text=True, timeout=TIMEOUT, env=_env())  # fmt: skip
    assert job.returncode == 0, job.stderr[-2000:]
    plain, zero, zero2 = json.loads(out.read_text())["results"]  # (--zero: stages 1 and 2)
    assert [r["zero"] for r in (plain, zero, zero2)] == [0, 1, 2]
    assert plain["ranks"] == zero["ranks"] == zero2["ranks"] == 2
    for z in (zero, zero2):
        assert 0.4 <= z["state_mib"] / plain["state_mib"] <= 0.55  # the fullest rank's share
        assert z["gather_ms"] > 0 == plain["gather_ms"]
    assert zero["grad_mib"] == plain["grad_mib"] > 0  # ZeRO-1 still holds every gradient
    assert 0.4 <= zero2["grad_mib"] / plain["grad_mib"] <= 0.55  # ZeRO-2: its own shard
    assert "state MiB" in job.stdout and "grad MiB" in job.stdout and "ZeRO" in job.stdout
