"""Issue 14, item 9: a NaN loss stops training with a one-line error naming the step (or the
step is skipped when asked), and the weights are never updated with it."""

import math

import numpy as np
import pytest

import numtrans as nt
from numtrans import nn
from numtrans.optim import SGD
from numtrans.training import NonFiniteLossError, TrainConfig, Trainer


def _setup(bad_steps, on_nonfinite):
    model = nn.Linear(3, 1)
    calls = {"n": 0}

    def loss_fn(model, batch):
        calls["n"] += 1
        out = model(nt.tensor(batch)).sum() * 0.01
        return out * math.nan if calls["n"] in bad_steps else out

    cfg = TrainConfig(
        max_steps=4, eval_interval=100, log_interval=100, progress=False, on_nonfinite=on_nonfinite
    )
    trainer = Trainer(
        model,
        SGD(model.parameters(), lr=0.1),
        lambda split, rng: np.ones((2, 3)),
        cfg,
        loss_fn=loss_fn,
    )
    return model, trainer


def test_nan_loss_stops_before_the_update():
    model, trainer = _setup({2}, "stop")
    trainer.train_step()
    before = model.weight.data.copy()
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 2"):
        trainer.train_step()
    np.testing.assert_array_equal(model.weight.data, before)
    assert np.isfinite(model.weight.data).all()


def test_skip_drops_the_step_and_goes_on():
    model, trainer = _setup({2}, "skip")
    trainer.train_step()
    before = model.weight.data.copy()
    loss, _ = trainer.train_step()
    assert math.isnan(loss) and trainer.skipped_steps == 1
    np.testing.assert_array_equal(model.weight.data, before)
    trainer.train_step()
    assert not np.array_equal(model.weight.data, before) and trainer.step == 3


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="on_nonfinite"):
        _setup(set(), "ignore")
