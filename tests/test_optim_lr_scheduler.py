"""Learning-rate schedules without PyTorch: values by hand, step counting, state, errors."""

import json
import math

import numpy as np
import pytest

import numtrans as nt
from numtrans import optim


def make_opt(lrs=(1.0,)):
    groups = [{"params": [nt.tensor(np.zeros(2), requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=lrs[0])


def lrs_over(sched, n):
    """lr used by optimiser step k (k = 0..n-1), with sched.step() after each optimiser step."""
    out = []
    for _ in range(n):
        out.append(sched.optimizer.param_groups[0]["lr"])
        sched.step()
    return out


def test_warmup_cosine_values():
    opt = make_opt((2.0,))
    sched = optim.WarmupCosineLR(opt, warmup_steps=4, total_steps=12, min_lr=0.2)
    assert opt.param_groups[0]["initial_lr"] == 2.0 and sched.last_epoch == 0
    lrs = lrs_over(sched, 16)
    np.testing.assert_allclose(lrs[:5], [0.0, 0.5, 1.0, 1.5, 2.0])  # linear warmup from 0
    mid = 0.2 + (2.0 - 0.2) * (1 + math.cos(math.pi * 4 / 8)) / 2  # halfway through the decay
    assert lrs[8] == pytest.approx(mid) and lrs[8] == pytest.approx(1.1)
    assert lrs[12] == pytest.approx(0.2) and lrs[13:] == [0.2, 0.2, 0.2]  # held at min_lr
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert sched.get_last_lr() == [0.2]


def test_warmup_cosine_start_factor_and_groups():
    opt = make_opt((1.0, 0.1))
    sched = optim.WarmupCosineLR(opt, warmup_steps=2, total_steps=4, start_factor=0.5)
    assert sched.get_last_lr() == [0.5, 0.05]
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.75, 0.075])


def test_warmup_constant():
    sched = optim.WarmupConstantLR(make_opt((0.3,)), warmup_steps=3)
    np.testing.assert_allclose(lrs_over(sched, 6), [0.0, 0.1, 0.2, 0.3, 0.3, 0.3])
    sched = optim.WarmupConstantLR(make_opt((0.3,)))  # no warmup: constant
    assert lrs_over(sched, 3) == [0.3, 0.3, 0.3]


def test_noam_matches_paper_formula():
    d_model, warmup = 512, 10
    sched = optim.NoamLR(make_opt((1.0,)), d_model=d_model, warmup_steps=warmup, factor=2.0)
    lrs = lrs_over(sched, 40)
    for k, lr in enumerate(lrs):
        s = k + 1  # the paper's step_num
        assert lr == pytest.approx(2.0 * d_model**-0.5 * min(s**-0.5, s * warmup**-1.5))
    assert int(np.argmax(lrs)) == warmup - 1  # peak at step_num == warmup
    assert lrs[warmup - 1] == pytest.approx(2.0 / math.sqrt(d_model * warmup))


def test_lambda_lr_per_group():
    opt = make_opt((1.0, 10.0))
    sched = optim.LambdaLR(opt, [lambda e: 0.5**e, lambda e: e + 1])
    sched.step()
    sched.step()
    assert sched.get_last_lr() == [0.25, 30.0]
    assert [g["lr"] for g in opt.param_groups] == [0.25, 30.0]
    with pytest.raises(ValueError, match="expected 2 lr_lambdas"):
        optim.LambdaLR(opt, [lambda e: 1.0])


def test_scheduler_state_round_trip_and_resume():
    opt = make_opt((1.0, 0.5))
    sched = optim.WarmupCosineLR(opt, warmup_steps=3, total_steps=10, min_lr=0.01)
    lrs_over(sched, 5)
    state = json.loads(json.dumps(sched.state_dict()))  # plain numbers: JSON-safe
    assert state["last_epoch"] == 5 and "optimizer" not in state
    expected = lrs_over(sched, 5)

    opt2 = make_opt((1.0, 0.5))
    sched2 = optim.WarmupCosineLR(opt2, warmup_steps=3, total_steps=10, min_lr=0.01)
    sched2.load_state_dict(state)  # also restores the current lr into the groups
    assert lrs_over(sched2, 5) == expected

    # PyTorch-style resume: last_epoch=k needs 'initial_lr' in the groups, then steps to k + 1
    sched3 = optim.WarmupCosineLR(opt2, warmup_steps=3, total_steps=10, min_lr=0.01, last_epoch=4)
    assert sched3.last_epoch == 5 and sched3.get_last_lr()[0] == expected[0]
    with pytest.raises(KeyError, match="initial_lr"):
        optim.NoamLR(make_opt(), d_model=8, warmup_steps=2, last_epoch=3)


def test_lambda_state_excludes_functions():
    sched = optim.LambdaLR(make_opt(), lambda e: 1.0 / (e + 1))
    sched.step()
    state = sched.state_dict()
    assert "lr_lambdas" not in state
    sched2 = optim.LambdaLR(make_opt(), lambda e: 1.0 / (e + 1))
    sched2.load_state_dict(state)
    sched.step()
    sched2.step()
    assert sched.get_last_lr() == sched2.get_last_lr() == [1.0 / 3]


def test_scheduler_errors():
    with pytest.raises(TypeError, match="not a numtrans Optimizer"):
        optim.WarmupConstantLR(object())
    with pytest.raises(ValueError, match="total_steps"):
        optim.WarmupCosineLR(make_opt(), warmup_steps=10, total_steps=10)
    with pytest.raises(ValueError, match="warmup_steps must be >= 0"):
        optim.WarmupConstantLR(make_opt(), warmup_steps=-1)
    with pytest.raises(ValueError, match="start_factor"):
        optim.WarmupCosineLR(make_opt(), 2, 10, start_factor=1.5)
    with pytest.raises(ValueError, match="min_lr"):
        optim.WarmupCosineLR(make_opt(), 2, 10, min_lr=-1.0)
    with pytest.raises(ValueError, match="positive"):
        optim.NoamLR(make_opt(), d_model=0, warmup_steps=10)
