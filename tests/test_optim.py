"""numtrans.optim without PyTorch: hand-computed steps, state round trips, clipping, errors."""

import json
import math

import numpy as np
import pytest

import numtrans as nt
from numtrans import optim


def make_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    return [nt.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def set_grads(params, rng):
    """A quadratic-ish loss: g = noise + p, so the trajectory depends on the parameters."""
    for p in params:
        p.grad = rng.standard_normal(p.shape).astype(p.dtype) + p.data


# ---------------------------------------------------------------- hand-computed steps
def test_sgd_plain_step():
    w = nt.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.1, weight_decay=0.5)
    w.grad = np.array([0.2, 0.4])
    opt.step()
    # g + wd*p = [0.7, -0.6]; p - 0.1 * that
    np.testing.assert_allclose(w.data, [0.93, -1.94], rtol=1e-14)
    np.testing.assert_array_equal(w.grad, [0.2, 0.4])  # the gradient is not modified


def test_sgd_momentum_dampening_and_nesterov_by_hand():
    g1, g2 = np.array([1.0, 2.0]), np.array([-1.0, 0.5])
    for nesterov, dampening in [(False, 0.0), (False, 0.3), (True, 0.0)]:
        w = nt.tensor(np.zeros(2), requires_grad=True)
        opt = optim.SGD([w], lr=0.5, momentum=0.9, dampening=dampening, nesterov=nesterov)
        w.grad = g1
        opt.step()
        b = g1.copy()  # the buffer starts at g, without dampening
        p = -0.5 * (g1 + 0.9 * b if nesterov else b)
        np.testing.assert_allclose(w.data, p, rtol=1e-14)
        w.grad = g2
        opt.step()
        b = 0.9 * b + (1 - dampening) * g2
        p = p - 0.5 * (g2 + 0.9 * b if nesterov else b)
        np.testing.assert_allclose(w.data, p, rtol=1e-14)
        np.testing.assert_allclose(opt.state[w]["momentum_buffer"], b, rtol=1e-14)


def test_adam_and_adamw_first_step():
    # step 1: m_hat = g, v_hat = g^2, so the update is lr * g / (|g| + eps) ~ lr * sign(g)
    g = np.array([0.5, -3.0, 1e-3])
    for cls, wd in [(optim.Adam, 0.0), (optim.AdamW, 0.1)]:
        p0 = np.array([1.0, 2.0, -1.0])
        w = nt.tensor(p0.copy(), requires_grad=True)
        opt = cls([w], lr=0.01, weight_decay=wd, eps=1e-8)
        w.grad = g.copy()
        opt.step()
        expected = p0 * (1 - 0.01 * wd) - 0.01 * g / (np.abs(g) + 1e-8)
        np.testing.assert_allclose(w.data, expected, rtol=1e-13)
        assert opt.state[w]["step"] == 1


def reference_adam(p, grads, lr, b1, b2, eps, wd, decoupled, amsgrad):
    """Textbook Adam/AdamW (Kingma & Ba; Loshchilov & Hutter), written for clarity."""
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        v_hat = (vmax if amsgrad else v) / (1 - b2**t)
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_matches_textbook_formula(cls, amsgrad):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(5) * (1 + t % 3) for t in range(30)]
    p0 = rng.standard_normal(5)
    w = nt.tensor(p0.copy(), requires_grad=True)
    opt = cls([w], lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=amsgrad)
    for g in grads:
        w.grad = g
        opt.step()
    expected = reference_adam(p0, grads, 0.05, 0.8, 0.95, 1e-6, 0.1, cls is optim.AdamW, amsgrad)
    np.testing.assert_allclose(w.data, expected, rtol=1e-11, atol=1e-13)


def test_param_without_grad_is_skipped_and_float32_stays_float32():
    a, b = make_params(dtype=np.float32)[:2]
    b0 = b.data.copy()
    opt = optim.AdamW([a, b], lr=0.1)
    a.grad = np.ones(a.shape, np.float32)
    opt.step()
    np.testing.assert_array_equal(b.data, b0)
    assert b not in opt.state and a in opt.state
    assert a.dtype == np.float32 and opt.state[a]["exp_avg"].dtype == np.float32


def test_zero_grad():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    set_grads(params, np.random.default_rng(0))
    kept = params[0].grad
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is kept and not kept.any()
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_param_groups_with_different_hyperparameters():
    w1 = nt.tensor(np.ones(2), requires_grad=True)
    w2 = nt.tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([{"params": [w1]}, {"params": w2, "lr": 1.0}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 1.0
    w1.grad, w2.grad = np.ones(2), np.ones(2)
    opt.param_groups[0]["lr"] = 0.5  # mutable, as schedulers need
    opt.step()
    np.testing.assert_allclose(w1.data, [0.5, 0.5])
    np.testing.assert_allclose(w2.data, [0.0, 0.0])


# ---------------------------------------------------------------- gradient accumulation
def test_gradient_accumulation_equals_full_batch():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    w0 = rng.standard_normal((3, 2))

    def run(micro_batches):
        w = nt.tensor(w0.copy(), requires_grad=True)
        opt = optim.AdamW([w], lr=0.01)
        for _ in range(3):
            k = len(micro_batches)
            for idx in micro_batches:
                err = nt.tensor(x[idx]) @ w - nt.tensor(y[idx])
                ((err * err).mean() / k).backward()  # scale so the k grads add up to the mean
            grad = w.grad.copy()
            opt.step()
            opt.zero_grad()
        return w.data, grad

    full_w, full_g = run([slice(0, 8)])
    acc_w, acc_g = run([slice(0, 4), slice(4, 8)])
    np.testing.assert_allclose(acc_g, full_g, rtol=1e-12)
    np.testing.assert_allclose(acc_w, full_w, rtol=1e-12)


# ---------------------------------------------------------------- state dict
def train(opt, params, rng, steps, sched=None):
    for _ in range(steps):
        set_grads(params, rng)
        opt.step()
        if sched is not None:
            sched.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True),
        lambda ps: optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.1}], lr=0.01),
        lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1),
    ],
)
def test_state_round_trip_through_safetensors_and_json(make, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    params = make_params()
    opt = make(params)
    sched = optim.WarmupCosineLR(opt, warmup_steps=3, total_steps=20, min_lr=1e-4)
    train(opt, params, np.random.default_rng(3), 7, sched)

    arrays, meta = optim.optimizer_state_to_flat(opt.state_dict())
    st.save_file(arrays, str(tmp_path / "opt.safetensors"))
    (tmp_path / "opt.json").write_text(json.dumps({"opt": meta, "sched": sched.state_dict()}))

    # a fresh model/optimiser/scheduler loaded from disk continues identically
    params2 = [nt.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt2 = make(params2)
    sched2 = optim.WarmupCosineLR(opt2, warmup_steps=3, total_steps=20, min_lr=1e-4)
    loaded = json.loads((tmp_path / "opt.json").read_text())
    flat = st.load_file(str(tmp_path / "opt.safetensors"))
    opt2.load_state_dict(optim.optimizer_state_from_flat(flat, loaded["opt"]))
    sched2.load_state_dict(loaded["sched"])
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]

    train(opt, params, np.random.default_rng(4), 8, sched)
    train(opt2, params2, np.random.default_rng(4), 8, sched2)
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.data, q.data)
    assert sched.get_last_lr() == sched2.get_last_lr()


def test_state_dict_layout_and_copies():
    params = make_params()
    opt = optim.AdamW([{"params": params[:2]}, {"params": params[2:], "weight_decay": 0.0}])
    train(opt, params, np.random.default_rng(5), 2)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["weight_decay"] == 0.0
    assert sd["state"][0]["step"] == 2 and set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    sd["state"][0]["exp_avg"][...] = 123.0  # a copy: the optimiser is unaffected
    assert not (opt.state[params[0]]["exp_avg"] == 123.0).any()


def test_load_state_dict_errors():
    params = make_params()
    opt = optim.Adam(params)
    train(opt, params, np.random.default_rng(6), 1)
    sd = opt.state_dict()
    other = optim.Adam(params[:2])
    with pytest.raises(ValueError, match="group 0 has 2 parameters"):
        other.load_state_dict(sd)
    two_groups = optim.Adam([{"params": params[:1]}, {"params": params[1:]}])
    with pytest.raises(ValueError, match="has 1 parameter groups, this optimizer has 2"):
        two_groups.load_state_dict(sd)
    sd["state"][0]["exp_avg"] = np.zeros(7)
    with pytest.raises(ValueError, match="shape"):
        optim.Adam(params).load_state_dict(sd)


# ---------------------------------------------------------------- clipping
def test_clip_grad_norm():
    a = nt.tensor(np.zeros(2), requires_grad=True)
    b = nt.tensor(np.zeros((1, 1)), requires_grad=True)
    c = nt.tensor(np.zeros(3), requires_grad=True)  # grad None: ignored
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([[4.0]])
    total = optim.clip_grad_norm_([a, b, c], max_norm=2.5)
    assert total == 5.0
    np.testing.assert_allclose(a.grad, [3.0 * 2.5 / (5 + 1e-6), 0.0])
    np.testing.assert_allclose(b.grad, [[4.0 * 2.5 / (5 + 1e-6)]])
    assert optim.clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(2.5, rel=1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * 2.5 / (5 + 1e-6), 0.0])  # below max: untouched
    a.grad = np.array([3.0, -7.0])
    assert optim.clip_grad_norm_(a, 100.0, norm_type=math.inf) == 7.0
    assert optim.get_total_norm([a, b], norm_type=1) == pytest.approx(10.0 + 4 * 2.5 / (5 + 1e-6))
    a.grad = np.array([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="NaN or inf"):
        optim.clip_grad_norm_([a], 1.0, error_if_nonfinite=True)
    assert optim.clip_grad_norm_([c], 1.0) == 0.0


# ---------------------------------------------------------------- weight-decay groups
def test_param_groups_for_weight_decay():
    named = {
        "embed.weight": nt.tensor(np.zeros((10, 4)), requires_grad=True),
        "fc.weight": nt.tensor(np.zeros((4, 4)), requires_grad=True),
        "fc.bias": nt.tensor(np.zeros(4), requires_grad=True),
        "ln.weight": nt.tensor(np.ones(4), requires_grad=True),
        "frozen.weight": nt.tensor(np.zeros((4, 4))),
    }
    decay, no_decay = optim.param_groups_for_weight_decay(named, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["params"] == [
        named["embed.weight"],
        named["fc.weight"],
    ]  # nanoGPT: embeddings decay
    assert no_decay["params"] == [named["fc.bias"], named["ln.weight"]]
    decay, no_decay = optim.param_groups_for_weight_decay(
        named.items(), 0.1, no_decay_names="embed"
    )
    assert decay["params"] == [named["fc.weight"]]
    assert no_decay["params"][0] is named["embed.weight"]
    opt = optim.AdamW(optim.param_groups_for_weight_decay(named, 0.1), lr=1e-3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]


# ---------------------------------------------------------------- errors
def test_constructor_errors():
    w = nt.tensor(np.zeros(2), requires_grad=True)
    with pytest.raises(ValueError, match="learning rate"):
        optim.AdamW([w], lr=-1e-3)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([{"params": [w], "lr": -1.0}])
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="beta parameter at index 0"):
        optim.AdamW([w], betas=(-0.1, 0.9))
    with pytest.raises(ValueError, match="eps"):
        optim.Adam([w], eps=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.SGD([w], weight_decay=-0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD(iter([{"params": []}]), lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.AdamW([{"params": [w]}, {"params": [w], "weight_decay": 0.0}])
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([w, w])
    with pytest.raises(TypeError, match="floating-point"):
        optim.SGD([nt.tensor(np.arange(3))])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(w)
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD({w})
    with pytest.raises(TypeError, match="name, parameter"):
        optim.SGD([("w", w)])
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([np.zeros(2)])
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([w], nesterov=True)
    opt = optim.SGD([w])
    w.grad = np.zeros(3)
    with pytest.raises(ValueError, match="gradient of shape"):
        opt.step()
