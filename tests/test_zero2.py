"""ZeRO-2 (``numtrans.distributed.zero2``): the gradients sharded over the ranks too.

Under ``mpirun -n 2``: the same parameters as plain DDP and as ZeRO-1 bit for bit, with gradient
clipping active (a wrong global norm would change them) and a parameter no rank has a gradient
for; at every optimiser step a rank holds the gradients of its own parameters only, about half of
the bytes; ``pretrain --ddp --ddp_zero=2`` writes plain checkpoints. In one process: the sharded
clip is ``clip_grad_norm_`` bit for bit, the reduction in a world of one, the one-line errors.
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
    _env,
    _pretrain_args,
    corpus,  # noqa: F401 (a fixture)
    mpirun,
    needs_mpi,
)
from test_distributed_worker import batcher, build, train_config  # noqa: E402

WORKER = Path(__file__).parent / "test_zero2_worker.py"
CLIP = train_config(1).grad_clip


def _run(tmp_path, dtype: str, zero: int, steps: int = 4):
    from safetensors.numpy import load_file

    out = str(tmp_path / f"zero{zero}-{dtype}.safetensors")
    job = mpirun(2, str(WORKER), out, dtype, str(steps), str(zero))
    assert job.returncode == 0, job.stderr[-2000:]
    return load_file(out), json.loads(Path(out + ".json").read_text())


@needs_mpi
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_zero2_is_plain_ddp_and_zero1_bit_for_bit_holding_half_the_gradients(tmp_path, dtype):
    (plain, plain_info), (zero1, zero1_info), (zero2, info) = (
        _run(tmp_path, dtype, zero) for zero in (0, 1, 2)
    )
    start = build(dtype)[0].state_dict()
    for name in plain:  # the same mean gradient, clipped by the same norm, the same update
        np.testing.assert_array_equal(zero2[name], plain[name], err_msg=name)
        np.testing.assert_array_equal(zero2[name], zero1[name], err_msg=name)
    assert max(float(np.abs(plain[k] - v).max()) for k, v in start.items()) > 1e-3  # it trained
    np.testing.assert_array_equal(zero2["spare"], 0.5)  # no gradient anywhere: never updated
    for key in ("train_loss", "val_loss", "lr"):
        assert info["history"][key] == plain_info["history"][key] == zero1_info["history"][key]
    # clipping was active at every step, by the same global norm (a rank's own would be smaller)
    assert info["norms"] == plain_info["norms"] == zero1_info["norms"]
    assert min(info["norms"]) > CLIP

    everything = set(plain_info["ranks"][0]["held"][0])  # plain DDP: every gradient, every rank
    ranks = info["ranks"]
    assert set(ranks[0]["owned"]).isdisjoint(ranks[1]["owned"])  # each parameter one owner
    assert set(ranks[0]["owned"]) | set(ranks[1]["owned"]) == everything | {"spare"}
    assert "spare" not in everything
    for rank in ranks:  # at every step: the gradients of its own parameters, nothing else
        assert all(set(held) == set(rank["owned"]) & everything for held in rank["held"])
    full = plain_info["ranks"][0]["held_bytes"][0]
    assert all(r["held_bytes"] == [full] * 4 for r in plain_info["ranks"] + zero1_info["ranks"])
    shards = [r["held_bytes"][0] for r in ranks]
    assert sum(shards) == full and max(shards) <= 0.55 * full, (shards, full)
    assert info["messages"] == 4 * info["buckets"]  # one Reduce per bucket per step


@needs_mpi
def test_pretrain_ddp_zero2_checkpoints_are_plain_checkpoints(tmp_path, corpus):  # noqa: F811
    """2 ranks with ZeRO-2 for 6 steps, resumed in one process to 9: the weights match one
    process trained alike, and the checkpoint holds the whole optimiser state."""
    from safetensors.numpy import load_file

    zero, ref = tmp_path / "zero", tmp_path / "ref"
    for ranks, steps in [(2, 6), (1, 9)]:
        resume = ["--resume"] * (steps > 6)
        args = _pretrain_args(corpus, zero, steps)
        if ranks == 2:
            job = mpirun(2, *args, "--ddp", "--ddp_zero=2", cwd=tmp_path)
            assert "optimiser state and gradients sharded (ZeRO-2)" in job.stdout
        else:
            job = subprocess.run([sys.executable, *args, *resume], capture_output=True, text=True,
                                 timeout=TIMEOUT, env=_env(), cwd=tmp_path)  # fmt: skip
        assert job.returncode == 0, job.stderr[-2000:]
        alone = subprocess.run([sys.executable, *_pretrain_args(corpus, ref, steps), *resume],
                               capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
                               cwd=tmp_path)  # fmt: skip
        assert alone.returncode == 0, alone.stderr[-2000:]
        got, want = (load_file(str(d / "model.safetensors")) for d in (zero, ref))
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=2e-6, err_msg=name)
        saved = load_file(str(zero / "checkpoints" / f"step-{steps:06d}" / "optimizer.safetensors"))
        assert len([k for k in saved if "exp_avg" in k]) == 2 * len(want)  # m and v of all


# ----------------------------------------------------------------------------- one-line errors
def test_a_bad_zero_value_is_one_line():
    for bad in (3, -1, "2", 1.0, None):
        with pytest.raises(ValueError, match="is not a ZeRO stage") as err:
            dist.zero_stage(bad)
        assert "\n" not in str(err.value)
    assert [dist.zero_stage(z) for z in (False, True, 0, 1, 2)] == [0, 1, 0, 1, 2]
    pytest.importorskip("mpi4py")
    model, optimizer, scheduler = build("float32")
    with pytest.raises(ValueError, match=r"zero=3 is not a ZeRO stage"):
        dist.DistributedTrainer(model, optimizer, batcher(), train_config(1), world=dist.self_world(),
                                zero=3)  # fmt: skip
    with pytest.raises(ValueError, match=r"zero=3 is not a ZeRO stage") as err:
        dist.DataParallelSteps(dist.self_world(), optimizer, [model], zero=3)
    assert "\n" not in str(err.value)


def test_pretrain_ddp_zero_accepts_a_stage_and_refuses_others(tmp_path, corpus):  # noqa: F811
    from numtrans.recipes.pretrain import PretrainConfig, validate

    for good in (True, False, 0, 1, 2):
        validate(PretrainConfig(ddp_zero=good))
    for bad in (3, "two", 2.0):
        with pytest.raises(ValueError, match="ddp_zero=.* is invalid: it must be true, false, 0"):
            validate(PretrainConfig(ddp_zero=bad))
    job = subprocess.run([sys.executable, *_pretrain_args(corpus, tmp_path / "x", 3),
                          "--ddp_zero=2"], capture_output=True, text=True, timeout=TIMEOUT,
                         env=_env(), cwd=tmp_path)  # fmt: skip
    assert job.returncode == 2 and job.stderr.count("\n") == 1, job.stderr
    assert "--ddp_zero=2 shards" in job.stderr and "needs --ddp" in job.stderr


# ----------------------------------------------------------------------------- in one process
def _set_grads(model, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.grad = (scale * rng.standard_normal(p.data.shape)).astype(p.data.dtype)


@pytest.mark.parametrize("norm_type", [2.0, float("inf"), 1.0])
def test_the_sharded_clip_in_a_world_of_one_is_clip_grad_norm_bit_for_bit(norm_type):
    pytest.importorskip("mpi4py")
    from numtrans.optim import clip_grad_norm_

    comm = dist.self_world().comm
    (a, *_), (b, *_) = build("float32"), build("float32")
    for scale in (10.0, 1e-4):  # clipped, and already short enough (left alone)
        _set_grads(a, 1, scale)
        _set_grads(b, 1, scale)
        next(iter(a.parameters())).grad = next(iter(b.parameters())).grad = None  # (skipped)
        want = clip_grad_norm_(b.parameters(), 0.5, norm_type)
        got = dist.clip_grad_norm_sharded_(list(a.parameters()), 0.5, comm, norm_type)
        assert got == want
        for p, q in zip(a.parameters(), b.parameters()):
            assert (p.grad is None) == (q.grad is None)
            if p.grad is not None:
                np.testing.assert_array_equal(p.grad, q.grad)


class _TwoHolders:
    """A stand-in communicator whose other rank holds the same gradients as this one."""

    def Allreduce(self, sendbuf, recvbuf, op=None):
        recvbuf *= 2


def test_a_gradient_held_twice_is_refused_by_the_sharded_clip():
    pytest.importorskip("mpi4py")
    model = build("float64")[0]
    _set_grads(model, 0)
    with pytest.raises(ValueError, match="held by more than one rank: the global norm would count"):
        dist.clip_grad_norm_sharded_(list(model.parameters()), 1.0, _TwoHolders())


def test_gradient_shards_in_a_world_of_one_keep_every_gradient_as_a_bucket_view():
    pytest.importorskip("mpi4py")
    model = build("float64")[0]
    params = list(model.parameters())
    shards = dist.GradientShards(params, [0] * len(params), dist.self_world().comm, 0.004)
    _set_grads(model, 2)
    want = [p.grad.copy() for p in params]
    params[1].grad = None  # no rank has it: it stays None
    shards.reduce_(present=shards.presence())
    assert params[1].grad is None and shards.messages == len(shards) > 1
    for j, p in enumerate(params):
        if j != 1:
            np.testing.assert_array_equal(p.grad, want[j])  # (the mean over one rank)
            assert any(np.shares_memory(p.grad, buf) for *_, buf in shards.buckets)
    assert shards.held_bytes() == sum(p.data.nbytes for p in params)
    assert dist.gradient_bytes(params) == shards.held_bytes() - params[1].data.nbytes
    with pytest.raises(ValueError, match="2 owners for"):
        dist.GradientShards(params, [0, 0], dist.self_world().comm)
