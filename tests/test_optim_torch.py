"""numtrans.optim against torch.optim: 100 float64 steps with identical gradients."""

import math

import numpy as np
import pytest

import numtrans as nt
from numtrans import optim

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

SHAPES = [(4,), (5, 4), (2, 3, 2)]  # growing sizes: the scratch buffer grows
STEPS = 100


def build(groups_spec, lib):
    """Identical float64 parameters for numtrans and torch, split into groups per the spec."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    if lib == "nt":
        params = [nt.tensor(a.copy(), requires_grad=True) for a in arrays]
    else:
        params = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    if groups_spec is None:
        return params, params
    groups = [{**extra, "params": [params[i] for i in idx]} for idx, extra in groups_spec]
    return params, groups


def grads_for(step, params_np):
    """Step-dependent noise plus p (a quadratic loss); the last parameter skips odd steps."""
    rng = np.random.default_rng(1000 + step)
    out = [rng.standard_normal(p.shape) * (1 + step % 4) + p for p in params_np]
    if step % 2:
        out[-1] = None  # grad None: skipped by both libraries (no state update either)
    return out


def run_both(nt_cls, torch_cls, kwargs, groups_spec=None, sched=None):
    nt_params, nt_groups = build(groups_spec, "nt")
    th_params, th_groups = build(groups_spec, "torch")
    nt_opt = nt_cls(nt_groups, **kwargs)
    th_opt = torch_cls(th_groups, **kwargs)
    nt_sched = th_sched = None
    if sched is not None:
        nt_sched, th_sched = sched(nt_opt, th_opt)
    for step in range(STEPS):
        for p, q, g in zip(nt_params, th_params, grads_for(step, [p.data for p in nt_params])):
            p.grad = g
            q.grad = None if g is None else torch.from_numpy(g.copy())
        nt_opt.step()
        th_opt.step()
        if sched is not None:
            nt_sched.step()
            th_sched.step()
            np.testing.assert_allclose(nt_sched.get_last_lr(), th_sched.get_last_lr(), rtol=1e-12)
    for p, q in zip(nt_params, th_params):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-12, atol=1e-14)
    return nt_opt, th_opt


GROUPS = [([0], {"lr": 0.03, "weight_decay": 0.2}), ([1, 2], {"weight_decay": 0.0})]


@pytest.mark.parametrize(
    "kwargs, groups",
    [
        (dict(lr=0.01), None),
        (dict(lr=0.01, momentum=0.9), None),
        (dict(lr=0.01, momentum=0.9, dampening=0.3, weight_decay=0.05), None),
        (dict(lr=0.01, momentum=0.8, nesterov=True, weight_decay=0.01), None),
        (dict(lr=0.01, momentum=0.9), GROUPS),
    ],
)
def test_sgd_matches_torch(kwargs, groups):
    nt_opt, th_opt = run_both(optim.SGD, torch.optim.SGD, kwargs, groups)
    if kwargs.get("momentum"):
        th_state = th_opt.state_dict()["state"]
        for idx, state in nt_opt.state_dict()["state"].items():
            np.testing.assert_allclose(
                state["momentum_buffer"], th_state[idx]["momentum_buffer"].numpy(), rtol=1e-12
            )


ADAM_CASES = [
    (dict(lr=0.01), None),
    (dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1), None),
    (dict(lr=0.01, amsgrad=True, weight_decay=0.05), None),
    (dict(lr=0.01, betas=(0.9, 0.98), amsgrad=True), GROUPS),
]


@pytest.mark.parametrize("nt_cls, torch_name", [(optim.Adam, "Adam"), (optim.AdamW, "AdamW")])
@pytest.mark.parametrize("kwargs, groups", ADAM_CASES)
def test_adam_adamw_match_torch(nt_cls, torch_name, kwargs, groups):
    nt_opt, th_opt = run_both(nt_cls, getattr(torch.optim, torch_name), kwargs, groups)
    th_state = th_opt.state_dict()["state"]
    nt_state = nt_opt.state_dict()["state"]
    assert sorted(nt_state) == sorted(th_state)
    for idx, state in nt_state.items():
        assert state["step"] == th_state[idx]["step"].item()
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if key in th_state[idx]:
                np.testing.assert_allclose(state[key], th_state[idx][key].numpy(), rtol=1e-12)


def test_adamw_with_warmup_cosine_matches_torch():
    def scheds(nt_opt, th_opt):
        ours = optim.WarmupCosineLR(
            nt_opt, warmup_steps=10, total_steps=STEPS, min_lr=1e-4, start_factor=0.1
        )
        warm = torch.optim.lr_scheduler.LinearLR(th_opt, start_factor=0.1, total_iters=10)
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(th_opt, T_max=STEPS - 10, eta_min=1e-4)
        theirs = torch.optim.lr_scheduler.SequentialLR(th_opt, [warm, cos], milestones=[10])
        return ours, theirs

    run_both(optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1), GROUPS, scheds)


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s) for s in SHAPES]
    for norm_type in (2.0, 1.0, 3.0, math.inf):
        for max_norm in (0.5, 1e6):
            ours = [nt.tensor(np.zeros(s), requires_grad=True) for s in SHAPES]
            theirs = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
            for p, q, g in zip(ours, theirs, grads):
                p.grad, q.grad = g.copy(), torch.from_numpy(g.copy())
            total = optim.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
            th_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
            assert total == pytest.approx(th_total.item(), rel=1e-12)
            for p, q in zip(ours, theirs):
                np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- schedules, step by step
def schedule_pair(make_ours, make_theirs, lrs=(0.1, 0.02), steps=120):
    """Both schedulers on two-group optimisers; compare the lr used at every optimiser step."""
    nt_opt = optim.SGD(
        [{"params": [nt.tensor(np.zeros(1), requires_grad=True)], "lr": lr} for lr in lrs]
    )
    th_opt = torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in lrs]
    )
    ours, theirs = make_ours(nt_opt), make_theirs(th_opt)
    for _ in range(steps):
        got = [g["lr"] for g in nt_opt.param_groups]
        want = [g["lr"] for g in th_opt.param_groups]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-17)
        nt_opt.step()  # torch warns if its scheduler steps before its optimiser
        th_opt.step()
        ours.step()
        theirs.step()
        assert ours.last_epoch == theirs.last_epoch


def test_warmup_cosine_matches_sequential_linear_cosine():
    lr_sched = torch.optim.lr_scheduler

    def theirs(opt):
        warm = lr_sched.LinearLR(opt, start_factor=0.05, end_factor=1.0, total_iters=20)
        cos = lr_sched.CosineAnnealingLR(opt, T_max=80, eta_min=1e-3)
        return lr_sched.SequentialLR(opt, [warm, cos], milestones=[20])

    schedule_pair(
        lambda o: optim.WarmupCosineLR(o, 20, 100, min_lr=1e-3, start_factor=0.05),
        theirs,
        steps=101,  # CosineAnnealingLR rises again after T_max; ours then holds min_lr
    )


def test_warmup_cosine_from_zero_matches_lambda_lr():
    def fn(e, w=15, total=90):
        if e < w:
            return e / w
        return 0.5 * (1 + math.cos(math.pi * min(e - w, total - w) / (total - w)))

    schedule_pair(
        lambda o: optim.WarmupCosineLR(o, 15, 90),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, fn),
    )


def test_warmup_constant_matches_linear_lr():
    schedule_pair(
        lambda o: optim.WarmupConstantLR(o, warmup_steps=25, start_factor=0.1),
        lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=25),
    )


def test_noam_matches_lambda_lr():
    d_model, warmup, factor = 256, 30, 2.0
    noam = lambda e: factor * d_model**-0.5 * min((e + 1) ** -0.5, (e + 1) * warmup**-1.5)
    schedule_pair(
        lambda o: optim.NoamLR(o, d_model=d_model, warmup_steps=warmup, factor=factor),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, noam),
        lrs=(1.0, 0.5),
    )


def test_lambda_lr_matches_torch():
    fns = [lambda e: 0.97**e, lambda e: 1.0 / (1 + 0.1 * e)]
    schedule_pair(
        lambda o: optim.LambdaLR(o, fns),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, fns),
    )
