"""The training loop: determinism, exact resume, atomic checkpoints, early stopping."""

import json
import os

import numpy as np
import pytest

from numtrans.recipes.pretrain import build, make_config
from numtrans.training import checkpoint as ckpt
from numtrans.training.pretrain_data import make_batcher
from numtrans.training.trainer import TrainConfig, Trainer

VOCAB = 11


def _setup(tmp_path, max_steps, dropout=0.1, **train_kw):
    cfg = make_config(
        "quick",
        {
            "n_layer": 1,
            "n_head": 2,
            "n_embd": 8,
            "block_size": 8,
            "batch_size": 4,
            "max_steps": max_steps,
            "warmup_steps": 1,
            "dropout": dropout,
        },
    )
    model, opt, sched = build(cfg, VOCAB)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, 400)
    batcher = make_batcher(ids[:300], ids[300:], cfg.block_size, cfg.batch_size)
    tc = TrainConfig(
        max_steps=max_steps,
        eval_interval=2,
        eval_batches=2,
        log_interval=1,
        checkpoint_dir=str(tmp_path / "ckpt"),
        progress=False,
        **train_kw,
    )
    return Trainer(model, opt, batcher, tc, scheduler=sched)


def test_same_seed_same_losses(tmp_path):
    a = _setup(tmp_path / "a", 5).train()
    b = _setup(tmp_path / "b", 5).train()
    assert a["train_loss"] == b["train_loss"]
    assert a["val_loss"] == b["val_loss"]


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path, capsys):
    straight = _setup(tmp_path / "straight", 6)
    straight.train()

    first = _setup(tmp_path / "split", 6)
    first.train(until=4)  # stopped after step 4 (checkpoints at steps 2 and 4)
    second = _setup(tmp_path / "split", 6)  # a fresh process: new model, new optimiser
    second.resume()
    assert second.step == 4
    second.train()

    assert second.history["train_loss"] == straight.history["train_loss"]
    assert second.history["val_loss"] == straight.history["val_loss"]
    # the wall clock goes on from the checkpoint's time instead of starting again at 0
    elapsed = second.history["elapsed"]
    assert len(elapsed) == len(second.history["step"]) == len(straight.history["step"])
    assert None not in elapsed and elapsed == sorted(elapsed) and elapsed[0] > 0
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), second.model.state_dict().items()
    ):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_history_from_before_the_elapsed_column_still_trains(tmp_path):
    t = _setup(tmp_path, 4)
    t.train(until=2)
    n = len(t.history["step"])
    del t.history["elapsed"]  # a checkpoint written by an older numtrans
    t.train()
    assert t.history["elapsed"][:n] == [None] * n
    assert len(t.history["elapsed"]) == len(t.history["step"]) > n
    assert all(e is not None for e in t.history["elapsed"][n:])


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    t = _setup(tmp_path, 2)
    t.train()
    good = ckpt.latest_checkpoint(tmp_path / "ckpt")
    assert good is not None and good.name == "step-000002"

    def broken(path, arrays):  # the disk fills up halfway through the next checkpoint
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "_save_arrays", broken)
    t.step = 3
    with pytest.raises(OSError):
        t.save_checkpoint()
    assert ckpt.latest_checkpoint(tmp_path / "ckpt") == good
    assert not [p for p in os.listdir(tmp_path / "ckpt") if p.startswith(".")]
    _, _, state = ckpt.load_checkpoint(tmp_path / "ckpt")
    assert state["step"] == 2


def test_checkpoint_has_no_pickle_and_readable_state(tmp_path):
    _setup(tmp_path, 2).train()
    path = ckpt.latest_checkpoint(tmp_path / "ckpt")
    assert sorted(os.listdir(path)) == ["model.safetensors", "optimizer.safetensors", "state.json"]
    state = json.loads((path / "state.json").read_text())
    assert state["step"] == 2 and "rng" in state and "optimizer" in state


def test_early_stopping_on_a_plateau(tmp_path):
    t = _setup(tmp_path, 50, patience=1)
    t.config.eval_interval = 1
    t.optimizer.param_groups[0]["lr"] = 0.0  # nothing improves
    for g in t.optimizer.param_groups:
        g["lr"] = 0.0
    t.scheduler = None
    t.train()
    assert t.step < 50


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ckpt.load_checkpoint(tmp_path / "nothing")


def test_interrupt_says_where_the_last_checkpoint_is(tmp_path, capsys):
    t = _setup(tmp_path, 10)
    calls = {"n": 0}
    original = t.get_batch

    def interrupting(split, rng):
        if split == "train":
            calls["n"] += 1
            if calls["n"] == 4:
                raise KeyboardInterrupt
        return original(split, rng)

    t.get_batch = interrupting
    with pytest.raises(KeyboardInterrupt):
        t.train()
    err = capsys.readouterr().err
    assert "interrupted at step 3" in err and "step-000002" in err
    assert ckpt.latest_checkpoint(tmp_path / "ckpt").name == "step-000002"


def test_a_run_shorter_than_the_preset_warmup_still_builds():
    cfg = make_config("quick", {"max_steps": 3, "n_layer": 1, "n_embd": 8, "n_head": 2})
    assert cfg.warmup_steps > cfg.max_steps
    _, opt, sched = build(cfg, VOCAB)
    lrs = []
    for _ in range(3):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert max(lrs) <= cfg.learning_rate and lrs[-1] >= 0


def test_train_config_from_job_takes_the_shared_fields_by_name():
    from dataclasses import dataclass

    from numtrans.training import TrainConfig

    @dataclass
    class Job:
        max_steps: int = 7
        seed: int = 3
        grad_clip: float | None = None
        hidden_size: int = 64  # not a loop setting: ignored

    cfg = TrainConfig.from_job(Job(), log_interval=2)
    assert (cfg.max_steps, cfg.seed, cfg.grad_clip, cfg.log_interval) == (7, 3, None, 2)
    assert cfg.eval_batches == TrainConfig().eval_batches  # not in the job: the default
    with pytest.raises(TypeError, match="no field"):
        TrainConfig.from_job(Job(), hidden_size=3)
