import numpy as np
import pytest

import numtrans as nt
from numtrans.finetune import dpo_loss
from numtrans.functional import logsigmoid


def test_logsigmoid_forward_matches_the_definition():
    x = np.linspace(-30, 30, 61)
    got = logsigmoid(nt.tensor(x, dtype=np.float64)).data
    np.testing.assert_allclose(got, -np.logaddexp(0.0, -x), rtol=1e-12)  # -softplus(-x)


def test_logsigmoid_gradcheck_float64():
    x = nt.tensor([-40.0, -3.0, -0.5, 0.0, 0.7, 5.0, 40.0], dtype=np.float64, requires_grad=True)
    assert nt.gradcheck(lambda t: logsigmoid(t) * np.arange(1.0, 8.0), [x])


def test_logsigmoid_finite_at_the_extremes_in_float32():
    x = nt.tensor(np.array([-1e4, -200.0, 0.0, 200.0, 1e4], np.float32), requires_grad=True)
    y = logsigmoid(x)
    assert y.dtype == np.float32 and np.isfinite(y.data).all()
    np.testing.assert_allclose(y.data, [-1e4, -200.0, -np.log(2), 0.0, 0.0], rtol=1e-6, atol=1e-7)
    y.sum().backward()
    assert np.isfinite(x.grad).all()
    np.testing.assert_allclose(x.grad, [1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-7)
    # the naive form is what this replaces: -inf at -1e4
    with np.errstate(divide="ignore", over="ignore"):
        assert np.isneginf(nt.tensor(np.float32([-1e4])).sigmoid().log().data).all()


def test_logsigmoid_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(scale=20, size=50)
    a = nt.tensor(x, dtype=np.float64, requires_grad=True)
    w = np.random.default_rng(1).normal(size=50)
    (logsigmoid(a) * w).sum().backward()
    t = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.logsigmoid(t) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(logsigmoid(a).data, torch.nn.functional.logsigmoid(t).detach(),
                               rtol=1e-12)  # fmt: skip
    np.testing.assert_allclose(a.grad, t.grad.numpy(), rtol=1e-12)


def test_dpo_loss_finite_for_a_margin_of_minus_200():
    pc = nt.tensor(np.float32([-2000.0]), requires_grad=True)  # beta * (-2000) = -200
    pr = nt.tensor(np.float32([0.0]), requires_grad=True)
    loss, chosen, rejected = dpo_loss(pc, pr, np.float32([0.0]), np.float32([0.0]), beta=0.1)
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(200.0, rel=1e-6)
    loss.backward()
    assert np.isfinite(pc.grad).all() and np.isfinite(pr.grad).all()
    np.testing.assert_allclose(pc.grad, [-0.1], rtol=1e-6)  # d/dz -logsigmoid(z) = -1 here
    np.testing.assert_allclose(pr.grad, [0.1], rtol=1e-6)
    assert chosen - rejected == pytest.approx(-200.0)
