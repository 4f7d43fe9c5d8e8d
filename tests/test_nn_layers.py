"""Linear, Embedding, LayerNorm, Dropout, activations, FeedForward and init."""

import math

import numpy as np
import pytest

import numtrans as nt
from numtrans import nn


def rand(*shape, seed=0, grad=True):
    return nt.Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=grad)


def test_linear_layout_init_and_gradcheck():
    nt.manual_seed(0)
    lin = nn.Linear(20, 30)
    assert lin.weight.shape == (30, 20) and lin.bias.shape == (30,)
    bound = 1 / math.sqrt(20)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.weight.data).max() > 0.8 * bound
    assert nn.Linear(3, 2, bias=False).bias is None
    small = nn.Linear(3, 2, dtype=np.float64)
    x = rand(2, 4, 3)
    assert nt.gradcheck(lambda x, w, b: small(x), [x, small.weight, small.bias])


def test_embedding_padding_idx():
    nt.manual_seed(0)
    emb = nn.Embedding(6, 3, padding_idx=1, dtype=np.float64)
    assert np.all(emb.weight.data[1] == 0)
    ids = np.array([[1, 2, 2], [0, 1, 5]])
    out = emb(ids)
    assert out.shape == (2, 3, 3)
    out.sum().backward()
    assert np.all(emb.weight.grad[1] == 0) and np.all(emb.weight.grad[2] == 2)
    with pytest.raises(IndexError, match="out of range"):
        emb(np.array([6]))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(3, 2, padding_idx=3)


def test_layer_norm_gradcheck_and_statistics():
    ln = nn.LayerNorm(5, dtype=np.float64)
    ln.weight.data[...] = np.random.default_rng(1).standard_normal(5)
    ln.bias.data[...] = np.random.default_rng(2).standard_normal(5)
    x = rand(2, 3, 5)
    assert nt.gradcheck(lambda x, w, b: ln(x), [x, ln.weight, ln.bias])
    plain = nn.LayerNorm(5, dtype=np.float64)(x).data
    np.testing.assert_allclose(plain.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(plain.var(-1), 1, rtol=1e-4)
    assert nn.LayerNorm(4, elementwise_affine=False).num_parameters() == 0
    assert nn.LayerNorm(4, bias=False).num_parameters() == 4


def test_layers_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6))
    pairs = [
        (nn.Linear(6, 4, dtype=np.float64), torch.nn.Linear(6, 4, dtype=torch.float64)),
        (
            nn.LayerNorm(6, eps=1e-6, dtype=np.float64),
            torch.nn.LayerNorm(6, eps=1e-6, dtype=torch.float64),
        ),
        (nn.GELU(), torch.nn.GELU()),
        (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.ReLU(), torch.nn.ReLU()),
    ]
    for ours, theirs in pairs:
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        ox, tx = nt.Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
        out, tout = ours(ox), theirs(tx)
        np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(out.shape)
        out.backward(g)
        tout.backward(torch.tensor(g))
        np.testing.assert_allclose(ox.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        tp = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, tp[name].grad.numpy(), rtol=1e-10, atol=1e-12)
    temb = torch.nn.Embedding(7, 4, padding_idx=0, dtype=torch.float64)
    emb = nn.Embedding(7, 4, padding_idx=0, dtype=np.float64)
    emb.load_state_dict({"weight": temb.weight.detach().numpy()})
    ids = np.array([[0, 3, 3, 6]])
    np.testing.assert_array_equal(emb(ids).data, temb(torch.tensor(ids)).detach().numpy())


def test_dropout_module_modes():
    d = nn.Dropout(0.5)
    x = nt.ones(1000, dtype=np.float64)
    y = d(x).data
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.5)


def test_feedforward_block():
    nt.manual_seed(0)
    ff = nn.FeedForward(4, 16, activation="gelu", dtype=np.float64)
    x = rand(2, 3, 4)
    out = ff(x)
    assert out.shape == (2, 3, 4)
    manual = ff.linear2(nt.functional.gelu(ff.linear1(x)))
    np.testing.assert_allclose(out.data, manual.data)
    assert nt.gradcheck_direction(lambda x, *p: ff(x), [x, *ff.parameters()])
    assert nn.FeedForward(8).linear1.out_features == 32  # d_ff defaults to 4 d_model
    with pytest.raises(ValueError, match="unknown activation"):
        nn.FeedForward(4, activation="swish")


def test_init_functions_follow_their_formulas():
    g = np.random.default_rng(0)
    w = nn.Parameter(np.empty((200, 300)))
    nn.init.xavier_uniform_(w, generator=g)
    a = math.sqrt(6 / 500)
    assert np.abs(w.data).max() <= a and abs(w.data.var() - a * a / 3) < 0.05 * a * a / 3
    nn.init.xavier_normal_(w, generator=g)
    assert abs(w.data.std() - math.sqrt(2 / 500)) < 0.02 * math.sqrt(2 / 500)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
    assert np.abs(w.data).max() <= 1 / math.sqrt(300)
    nn.init.normal_(w, std=0.02, generator=g)
    assert abs(w.data.std() - 0.02) < 0.001
    nn.init.constant_(w, 3.0)
    assert np.all(w.data == 3)
    assert nn.init.fan_in_and_fan_out(w) == (300, 200)
    with pytest.raises(ValueError, match="at least 2 dims"):
        nn.init.xavier_uniform_(nn.Parameter(np.zeros(3)))
