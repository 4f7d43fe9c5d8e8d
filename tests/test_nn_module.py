"""Module, Parameter and the containers: registration, traversal, modes, state_dict, repr."""

import copy

import numpy as np
import pytest

import numtrans as nt
from numtrans import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.heads = nn.ModuleDict({"a": nn.Linear(4, 2)})
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.register_buffer("table", np.arange(3.0))
        self.register_buffer("cache", np.zeros(2), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        x = self.act(self.fc1(x))
        for block in self.blocks:
            x = block(x)
        return self.heads["a"](x) * self.scale


def test_parameter_is_a_trainable_tensor():
    p = nn.Parameter([1.0, 2.0])
    assert isinstance(p, nt.Tensor) and p.requires_grad and p.dtype == np.float32
    (p * p).sum().backward()
    np.testing.assert_array_equal(p.grad, [2.0, 4.0])
    assert "Parameter containing" in repr(p)
    a = np.zeros(2)
    assert nn.Parameter(a).data is not a  # a copy


def test_registration_and_traversal():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "scale", "fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias",
        "blocks.1.weight", "blocks.1.bias", "heads.a.weight", "heads.a.bias",
    ]  # fmt: skip
    assert len(list(net.parameters())) == 9
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "blocks", "heads"]
    assert len(list(net.modules())) == 8
    assert dict(net.named_buffers()).keys() == {"table", "cache"}
    assert net.note == "plain attribute"
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = net.missing
    with pytest.raises(TypeError, match="wrap it in nn.Parameter"):
        net.scale = nt.ones(1)
    net.fc1 = nn.Linear(3, 5)  # replacing a child re-registers it
    assert net.fc1.out_features == 5
    del net.heads
    assert "heads" not in dict(net.named_children())


def test_setattr_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super"):
        Bad()


def test_train_eval_zero_grad_and_forward():
    net = Net()
    assert net.training and all(m.training for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    out = net(nt.randn(2, 3))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_and_copies():
    a, b = Net(), Net()
    sd = a.state_dict()
    assert list(sd)[:3] == ["scale", "table", "fc1.weight"]  # PyTorch's order
    assert "cache" not in sd  # non-persistent buffers are not saved
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["fc1.weight"][...] = 7  # a copy: the model is untouched
    assert not np.all(a.fc1.weight.data == 7)
    b.load_state_dict(a.state_dict())
    for (n1, p1), (_, p2) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p1.data, p2.data, err_msg=n1)
    x = nt.randn(2, 3)
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_errors_name_every_key():
    net = Net()
    sd = net.state_dict()
    del sd["fc1.bias"]
    sd["extra.weight"] = np.zeros(2)
    sd["blocks.0.weight"] = np.zeros((5, 4))
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert "missing keys: fc1.bias" in msg and "unexpected keys: extra.weight" in msg
    assert "size mismatch for blocks.0.weight" in msg and "(5, 4)" in msg
    del sd["blocks.0.weight"]
    result = net.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["fc1.bias", "blocks.0.weight"]
    assert result.unexpected_keys == ["extra.weight"]


def test_load_casts_to_model_dtype_and_accepts_array_likes():
    lin = nn.Linear(2, 2)
    lin.load_state_dict({"weight": [[1.0, 2.0], [3.0, 4.0]], "bias": np.zeros(2)})
    assert lin.weight.dtype == np.float32 and lin.weight.data[1, 1] == 4


def test_tied_parameters_counted_once_and_loaded_by_either_name():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 3)
            self.head = nn.Linear(3, 5, bias=False)
            self.head.weight = self.emb.weight

    m = Tied()
    assert m.num_parameters() == 15 and len(list(m.parameters())) == 1
    assert list(m.state_dict()) == ["emb.weight", "head.weight"]
    new = np.arange(15.0).reshape(5, 3)
    m.load_state_dict({"head.weight": new})  # one name is enough
    np.testing.assert_array_equal(m.emb.weight.data, new)
    m2 = copy.deepcopy(m)
    assert m2.head.weight is m2.emb.weight  # deepcopy keeps the tie


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert seq(nt.randn(4, 2)).shape == (4, 1) and len(seq) == 3
    assert isinstance(seq[1], nn.ReLU) and len(seq[:2]) == 2
    ml = nn.ModuleList([nn.ReLU()])
    ml.append(nn.GELU())
    ml.insert(0, nn.Tanh())
    assert [type(m).__name__ for m in ml] == ["Tanh", "ReLU", "GELU"]
    assert isinstance(ml[-1], nn.GELU)
    with pytest.raises(IndexError, match="out of range"):
        ml[3]
    md = nn.ModuleDict({"x": nn.Linear(1, 1)})
    md["y"] = nn.Linear(1, 2)
    assert list(md) == ["x", "y"] and "y" in md and len(md) == 2
    assert list(md.state_dict()) == ["x.weight", "x.bias", "y.weight", "y.bias"]


def test_repr_shows_structure_and_counts():
    text = repr(Net())
    assert text.startswith("Net(  # 67 params")
    assert "(fc1): Linear(in_features=3, out_features=4, bias=True)  # 16 params" in text
    assert "(act): ReLU()" in text


def test_dtype_conversion_and_apply():
    net = Net().double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.table.dtype == np.float64
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 4
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    assert net.num_parameters(trainable_only=True) == 0
