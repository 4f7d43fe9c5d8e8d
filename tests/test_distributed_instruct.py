"""``train_sft`` / ``train_dpo`` with ``world=`` and ``mpirun -n 2 numtrans sft|dpo --ddp``.

The central check: 2 ranks share each global batch and, after k steps, hold the parameters one
process has after k steps on the whole batches (a float64 GPT, to 1e-10). The batches are built
to make a wrong weighting fail: the halves of the SFT batches hold different numbers of answer
tokens (the token loss is a mean over them, so each rank weighs by its share of the tokens), one
SFT batch and every DPO batch of 3 pairs splits 1 + 2 rows (weighted by rows or pairs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numtrans import distributed as dist

HERE = Path(__file__).resolve().parent
WORKER = HERE / "test_distributed_instruct_worker.py"
sys.path.insert(0, str(HERE))
from test_distributed import HAVE_MPI4PY, TIMEOUT, _env, mpirun, needs_mpi  # noqa: E402
from test_distributed_instruct_worker import CASES, conversations, pairs, run_case  # noqa: E402
from test_distributed_instruct_worker import model as fresh_model  # noqa: E402

SFT_CASES = [c[0] for c in CASES if c[1] == "sft"]


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory):
    """A byte-level BPE with the chat tokens, saved once: the ranks and this process load it."""
    from numtrans.instruct import add_chat_tokens
    from numtrans.tokenizers.bpe import ByteBPETokenizer

    texts = [m["content"] for conv in conversations() for m in conv]
    tokenizer = ByteBPETokenizer.train(texts * 5, 300)
    add_chat_tokens(tokenizer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tokenizer.save(path)
    return path


@pytest.fixture(scope="module")
def tokenizer(tokenizer_file):
    from numtrans.tokenizers import load

    return load(tokenizer_file)


@pytest.fixture(scope="module")
def two_ranks(tokenizer_file, tmp_path_factory):
    """Every case of the worker, trained by 2 ranks in one mpirun job: the output folder."""
    out = tmp_path_factory.mktemp("ddp")
    job = mpirun(2, str(WORKER), str(tokenizer_file), str(out))
    assert job.returncode == 0, job.stderr[-2000:]
    return out


def _compare(out: Path, case: str, tokenizer) -> None:
    """Rank 0's saved parameters and losses against one process on the whole batches."""
    got = dict(np.load(out / f"{case}.npz"))
    logged = json.loads((out / f"{case}.json").read_text())
    model, losses = run_case(case, tokenizer)
    want = model.state_dict()
    assert sorted(got) == sorted(want)
    worst = max(float(np.max(np.abs(got[k] - want[k]))) for k in want)
    untrained = fresh_model(tokenizer).state_dict()
    moved = max(float(np.max(np.abs(want[k] - v))) for k, v in untrained.items())
    assert worst <= 1e-10 and moved > 1e-3, (worst, moved)  # equal, and training moved them
    if isinstance(losses[0], dict):  # DPO: every logged statistic is the global batch's
        for key in losses[0]:
            np.testing.assert_allclose([s[key] for s in logged], [s[key] for s in losses],
                                       rtol=1e-10, atol=1e-12, err_msg=key)  # fmt: skip
    else:
        np.testing.assert_allclose(logged, losses, rtol=1e-10)


@needs_mpi
@pytest.mark.parametrize("case", SFT_CASES)
def test_sft_two_ranks_equal_one_process_with_the_whole_batch(two_ranks, tokenizer, case):
    _compare(two_ranks, case, tokenizer)


@needs_mpi
@pytest.mark.parametrize("case", ["dpo", "dpo-zero", "dpo-zero2"])
def test_dpo_two_ranks_equal_one_process_with_the_whole_batch(two_ranks, tokenizer, case):
    _compare(two_ranks, case, tokenizer)


@needs_mpi
@pytest.mark.parametrize("job", ["sft-token", "dpo"])
def test_zero_shards_the_optimizer_state_over_the_ranks(two_ranks, job):
    """Plain DDP: every rank holds every parameter's AdamW state and gradient; ZeRO-1: each rank
    some of the states, none twice, all of them between the two; ZeRO-2: the gradients too (and
    the parameters are the same: the tests above)."""
    (plain_states, plain_grads), same = json.loads((two_ranks / f"{job}.state.json").read_text())
    assert same == [plain_states, plain_grads] and plain_states > 2 and plain_grads > 2
    for stage, sharded in (("zero", [0]), ("zero2", [0, 1])):
        held = json.loads((two_ranks / f"{job}-{stage}.state.json").read_text())
        for k, full in enumerate([plain_states, plain_grads]):
            counts = [rank[k] for rank in held]
            if k in sharded:
                assert all(0 < n < full for n in counts) and sum(counts) == full, (stage, held)
            else:
                assert counts == [full, full], (stage, held)


@needs_mpi
def test_rank_0s_clock_stops_every_rank_at_the_same_step(two_ranks):
    """Only rank 0's time was up (each rank deciding alone, rank 1 would wait in step 2's
    Allreduce forever: the job would time out)."""
    assert json.loads((two_ranks / "timed.json").read_text()) == [1, 1]


def test_the_batches_make_a_wrong_weighting_fail(tokenizer):
    """The premise of the comparisons above: rows alone would weigh the two ranks wrongly."""
    from numtrans.instruct.sft import IGNORE_INDEX, bucket_batches, pack_batches, sft_example

    examples = [sft_example(c, tokenizer, 48) for c in conversations()]
    for batches in (bucket_batches(examples, 4, 0), pack_batches(examples, 2, 48, 0)):
        halves = []
        for b in batches:
            y, cut = b[1], len(b[1]) // 2
            halves.append(
                (int((y[:cut] != IGNORE_INDEX).sum()), int((y[cut:] != IGNORE_INDEX).sum()))
            )
        assert all(a != b for a, b in halves), halves  # every batch: tokens split unevenly
    assert sorted(len(b[0]) for b in bucket_batches(examples, 4, 0)) == [3, 4, 4]


@pytest.mark.skipif(not HAVE_MPI4PY, reason="needs mpi4py (pip install 'numtrans[mpi]')")
@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_a_world_of_one_is_one_process_bit_for_bit(tokenizer, case):
    model, losses = run_case(case, tokenizer, world=dist.self_world())
    want, want_losses = run_case(case, tokenizer)
    assert losses == want_losses
    for name, value in want.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], value, err_msg=name)


class _FakeComm:
    """Three ranks, as far as the checks before the first collective can tell."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 3


@pytest.mark.parametrize("job", ["sft", "dpo"])
def test_more_ranks_than_rows_is_one_line(tokenizer, job):
    from numtrans.instruct.preference import train_dpo
    from numtrans.instruct.train import train_sft

    world, model = dist.World(_FakeComm()), fresh_model(tokenizer)
    with pytest.raises(ValueError, match=r"^3 ranks exceed batch_size=2: every rank needs"):
        if job == "sft":
            train_sft(model, tokenizer, conversations(), batch_size=2, world=world)
        else:
            train_dpo(model, fresh_model(tokenizer), pairs(), tokenizer, batch_size=2, world=world)


# ----------------------------------------------------------------------------- the command line
TINY = ["--max-per-task", "8", "--steps", "6", "--batch-size", "4", "--lr", "3e-3",
        "--log-every", "3", "--vocab-size", "300", "--block-size", "64", "--n-layer", "1",
        "--n-head", "2", "--n-embd", "16"]  # fmt: skip


def _cli(*args) -> list[str]:
    return ["-m", "numtrans.cli", *args]


def _alone(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *_cli(*args)], capture_output=True, text=True,
                          timeout=TIMEOUT, env=_env(), cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """``sft --ddp`` on 2 ranks and ``sft`` in one process, same settings: the folder and the
    mpirun job."""
    base = tmp_path_factory.mktemp("cli")
    job = mpirun(2, *_cli("sft", "--out", "ddp", *TINY, "--ddp"), cwd=base)
    assert job.returncode == 0, job.stderr[-2000:]
    alone = _alone(["sft", "--out", "one", *TINY], base)
    assert alone.returncode == 0, alone.stderr[-2000:]
    return base, job


@needs_mpi
def test_sft_ddp_writes_the_one_process_model_once(cli_runs):
    from safetensors.numpy import load_file

    base, job = cli_runs
    assert job.stdout.count("saved the chat model to ddp") == 1  # rank 0 alone prints and saves
    assert job.stdout.count("sft: ") == 1 and job.stdout.count("step 6/6") == 1
    assert "data parallel: 2 ranks share each global batch of 4, weighted by answer" in job.stdout
    record = json.loads((base / "ddp" / "training.json").read_text())
    want = json.loads((base / "one" / "training.json").read_text())
    assert record.pop("ranks") == 2 and record.pop("zero") == 0
    assert record.keys() == want.keys()
    for key in ("first_loss", "last_loss"):
        assert record[key] == pytest.approx(want[key], rel=1e-5), key
    # the tokenizer was learned once, on rank 0, and is the one one process learns
    assert (base / "ddp" / "tokenizer.json").read_text() == (
        base / "one" / "tokenizer.json"
    ).read_text()
    got, ref = (load_file(str(base / d / "model.safetensors")) for d in ("ddp", "one"))
    assert sorted(got) == sorted(ref)
    for name in ref:
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-4, atol=1e-5, err_msg=name)


@needs_mpi
def test_dpo_ddp_trains_on_the_sft_model(cli_runs):
    base, _ = cli_runs
    rows = [{"prompt": f"say {w}", "chosen": w, "rejected": "no " * n}
            for n, w in enumerate(("yes", "maybe", "ok", "sure", "fine"), 1)]  # fmt: skip
    (base / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["dpo", "--model", "ddp", "--pairs", "pairs.jsonl", "--steps", "3", "--batch-size",
            "3", "--lr", "1e-3", "--val-fraction", "0.2", "--log-every", "1"]  # fmt: skip
    job = mpirun(2, *_cli(*args, "--out", "dpo_ddp", "--ddp"), cwd=base)
    assert job.returncode == 0, job.stderr[-2000:]
    assert job.stdout.count("saved the DPO model to dpo_ddp") == 1
    assert job.stdout.count("held-out (1 pairs) before:") == 1  # rank 0 alone evaluates
    alone = _alone([*args, "--out", "dpo_one"], base)
    assert alone.returncode == 0, alone.stderr[-2000:]
    record, want = (
        json.loads((base / d / "training.json").read_text()) for d in ("dpo_ddp", "dpo_one")
    )
    assert record["ranks"] == 2 and record["train_pairs"] == want["train_pairs"] == 4
    for key in ("loss", "reward_margin", "grad_norm"):
        assert record["last_step"][key] == pytest.approx(want["last_step"][key], rel=1e-4, abs=1e-6)


@needs_mpi
def test_sft_ddp_with_more_ranks_than_rows_says_so_once(tmp_path):
    # (the last --batch-size counts)
    job = mpirun(3, *_cli("sft", "--out", "x", *TINY, "--batch-size", "2", "--ddp"), cwd=tmp_path)
    lines = [line for line in job.stderr.splitlines() if line.startswith("numtrans")]
    assert job.returncode != 0 and len(lines) == 1, job.stderr
    assert "3 ranks exceed --batch-size=2" in lines[0] and not (tmp_path / "x").exists()


@pytest.mark.parametrize("job", ["sft", "dpo"])
def test_ddp_outside_mpirun_is_one_line(tmp_path, job):
    more = ["--out", "x"] if job == "sft" else ["--model", "m", "--out", "x", "--pairs", "p"]
    result = _alone([job, *more, "--ddp"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "start it with mpirun" in result.stderr
    assert result.stderr.startswith(f"numtrans {job}: error: --ddp runs one process per rank")
    assert f"mpirun -n 2 numtrans {job} ... --ddp" in result.stderr  # the command run, not another


@pytest.mark.parametrize("job", ["sft", "dpo"])
def test_zero_without_data_parallel_is_one_line(tmp_path, tokenizer, job):
    from numtrans.instruct.preference import train_dpo
    from numtrans.instruct.train import train_sft

    model = fresh_model(tokenizer)
    with pytest.raises(ValueError, match=r"^zero=True shards AdamW's state over data-parallel"):
        if job == "sft":
            train_sft(model, tokenizer, conversations(), zero=True)
        else:
            train_dpo(model, fresh_model(tokenizer), pairs(), tokenizer, zero=True)
    more = ["--out", "x"] if job == "sft" else ["--model", "m", "--out", "x", "--pairs", "p"]
    result = _alone([job, *more, "--zero"], tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--zero shards the optimiser over data-parallel ranks: it needs --ddp" in result.stderr
