"""LoRA adapters: gradients, merge, save / load, several adapters, bad input."""

import numpy as np
import pytest

from numtrans import manual_seed, nn
from numtrans.autograd.gradcheck import gradcheck
from numtrans.models.bert import BertConfig, BertModel
from numtrans.peft import (
    LoRALinear,
    apply_lora,
    load_adapter,
    merge_adapter,
    save_adapter,
    set_adapter,
    trainable_parameters,
    unmerge_adapter,
)
from numtrans.tensor import Tensor


def small_bert():
    manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    return BertModel(cfg).double()


def run(model, ids):
    return model(ids).last_hidden_state.numpy()


def randomize_b(model, seed):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.lora_B.data[...] = rng.normal(size=m.lora_B.shape)


def test_gradcheck_float64():
    lin = nn.Linear(5, 4).double()
    layer = LoRALinear(lin, r=2, alpha=4)
    layer.lora_B.data[...] = np.random.default_rng(0).normal(size=layer.lora_B.shape)
    x = Tensor(np.random.default_rng(1).normal(size=(3, 5)), requires_grad=True)
    assert gradcheck(lambda x, a, b: layer(x), [x, layer.lora_A, layer.lora_B])
    assert not layer.weight.requires_grad


def test_starts_at_base_and_merge_equals_unmerged():
    model, ids = small_bert(), np.array([[1, 2, 3, 4]])
    base = run(model, ids)
    apply_lora(model, r=4, alpha=8)
    np.testing.assert_allclose(run(model, ids), base, atol=1e-12)
    randomize_b(model, 0)
    adapted = run(model, ids)
    assert np.abs(adapted - base).max() > 1e-3
    merge_adapter(model)
    np.testing.assert_allclose(run(model, ids), adapted, atol=1e-10)
    unmerge_adapter(model)
    np.testing.assert_allclose(run(model, ids), adapted, atol=1e-10)
    trained, total = trainable_parameters(model)
    assert trained == 2 * 4 * 4 * (16 + 16) and total > trained


def test_save_load_switch_and_wrong_base(tmp_path):
    model, ids = small_bert(), np.array([[1, 2, 3]])
    apply_lora(model, r=2, alpha=4)
    outs = {}
    for task, seed in (("a", 1), ("b", 2)):
        randomize_b(model, seed)
        outs[task] = run(model, ids)
        save_adapter(model, str(tmp_path / task))
    fresh = small_bert()
    load_adapter(fresh, str(tmp_path / "a"), name="a")
    load_adapter(fresh, str(tmp_path / "b"), name="b")
    for task in ("b", "a", "b"):
        set_adapter(fresh, task)
        np.testing.assert_allclose(run(fresh, ids), outs[task], atol=1e-10)
    manual_seed(0)
    other = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=16,
                                 max_position_embeddings=16))  # fmt: skip
    with pytest.raises(ValueError, match="another base"):
        load_adapter(other, str(tmp_path / "a"))


def test_bad_input():
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(nn.Linear(4, 3), r=0, alpha=1)
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(nn.Linear(4, 3), r=4, alpha=1)
    with pytest.raises(ValueError, match="match no Linear"):
        apply_lora(small_bert(), target_modules=("nothing_here",))


def test_matches_peft_library():
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(6, 5)

        def forward(self, x):
            return self.fc(x)

    torch.manual_seed(0)
    net = Net().double()
    pm = peft.get_peft_model(net, peft.LoraConfig(r=2, lora_alpha=4, target_modules=["fc"]))
    layer = pm.base_model.model.fc
    torch.nn.init.normal_(layer.lora_B["default"].weight)
    ours = nn.Linear(6, 5).double()
    ours.weight.data[...] = layer.base_layer.weight.detach().numpy()
    ours.bias.data[...] = layer.base_layer.bias.detach().numpy()
    lora = LoRALinear(ours, r=2, alpha=4)
    lora.lora_A.data[...] = layer.lora_A["default"].weight.detach().numpy()
    lora.lora_B.data[...] = layer.lora_B["default"].weight.detach().numpy()
    x = np.random.default_rng(0).normal(size=(3, 6))
    y_t = pm(torch.tensor(x))
    y_t.pow(2).sum().backward()
    y = lora(Tensor(x))
    (y * y).sum().backward()
    np.testing.assert_allclose(y.numpy(), y_t.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(lora.lora_A.grad, layer.lora_A["default"].weight.grad, atol=1e-6)
    np.testing.assert_allclose(lora.lora_B.grad, layer.lora_B["default"].weight.grad, atol=1e-6)


def test_adapters_on_different_layers_skip_the_others_as_peft_does():
    """Adapter "a" targets fc1 only and "b" fc2 only: with "b" active, fc1 runs as its base."""
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(6, 5), torch.nn.Linear(5, 4)

        def forward(self, x):
            return self.fc2(torch.tanh(self.fc1(x)))

    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(6, 5).double(), nn.Linear(5, 4).double()

        def forward(self, x):
            return self.fc2(self.fc1(x).tanh())

    torch.manual_seed(0)
    pm = peft.get_peft_model(Net().double(), peft.LoraConfig(r=2, lora_alpha=4,
                                                             target_modules=["fc1"]))  # fmt: skip
    pm.add_adapter("b", peft.LoraConfig(r=2, lora_alpha=4, target_modules=["fc2"]))
    ours = Ours()
    for name in ("fc1", "fc2"):
        theirs = getattr(pm.base_model.model, name)
        getattr(ours, name).weight.data[...] = theirs.base_layer.weight.detach().numpy()
        getattr(ours, name).bias.data[...] = theirs.base_layer.bias.detach().numpy()
    apply_lora(ours, r=2, alpha=4, target_modules=("fc1",), adapter_name="default")
    apply_lora(ours, r=2, alpha=4, target_modules=("fc2",), adapter_name="b")
    for name, adapter in (("fc1", "default"), ("fc2", "b")):
        theirs, mine = getattr(pm.base_model.model, name), getattr(ours, name)
        torch.nn.init.normal_(theirs.lora_B[adapter].weight)
        A, B, _, _ = mine.adapters[adapter]
        A.data[...] = theirs.lora_A[adapter].weight.detach().numpy()
        B.data[...] = theirs.lora_B[adapter].weight.detach().numpy()
    x = np.random.default_rng(0).normal(size=(3, 6))
    outs = {}
    for adapter in ("b", "default", "b"):
        pm.set_adapter(adapter)
        set_adapter(ours, adapter)
        outs[adapter] = ours(Tensor(x)).numpy()
        expected = pm(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(outs[adapter], expected, atol=1e-10)
    assert np.abs(outs["b"] - outs["default"]).max() > 1e-3
    assert "fc1.lora_A" not in ours.state_dict() and "fc2.lora_A" in ours.state_dict()
