"""Trainable token rows (``trainable_token_indices``) on a tiny GPT whose embedding grew by three
new tokens: the rows' gradients are the full model's, merge keeps the outputs, save / load."""

import numpy as np
import pytest

from numtrans import manual_seed
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.peft import (
    GPT_ATTENTION,
    TrainableTokens,
    apply_lora,
    load_adapter,
    merge_and_unload,
    save_adapter,
    trainable_parameters,
)

V0, NEW = 30, [30, 31, 32]
IDS = np.array([[1, 30, 5, 31, 7, 32], [2, 3, 32, 4, 30, 6]])


def tiny_gpt(tie=True):
    manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=V0, n_layer=1, n_head=2, n_embd=8,
                          dropout=0.0, tie_weights=tie))  # fmt: skip
    model.resize_token_embeddings(V0 + len(NEW))
    return model.double().eval()


def adapted():
    model = tiny_gpt()
    apply_lora(model, 2, 4, GPT_ATTENTION, trainable_token_indices={"transformer.wte": NEW})
    return model


def test_rows_train_like_the_full_models_rows():
    full, model = tiny_gpt(), adapted()
    np.testing.assert_allclose(model(IDS)[0].numpy(), full(IDS)[0].numpy(), atol=1e-12)
    assert isinstance(model.lm_head, TrainableTokens)  # the tied output layer reads the rows
    lora = 2 * (8 + 24) + 2 * (8 + 8)  # one block: c_attn 8 -> 24 and c_proj 8 -> 8, rank 2
    assert trainable_parameters(model)[0] == lora + len(NEW) * 8
    targets = np.roll(IDS, -1, axis=1)
    model(IDS, targets)[1].backward()
    full(IDS, targets)[1].backward()
    delta = model.transformer["wte"].trainable_tokens_delta
    # B = 0, so the adapted model is the full one: the rows' gradient is the full table's rows'
    np.testing.assert_allclose(delta.grad, full.transformer["wte"].weight.grad[NEW], atol=1e-12)
    assert model.transformer["wte"].weight.grad is None


def test_merge_save_load_and_another_base(tmp_path):
    model = adapted()
    rng = np.random.default_rng(0)
    delta = model.transformer["wte"].trainable_tokens_delta
    delta.data[...] = rng.normal(size=delta.shape)
    for layer in model.modules():
        if hasattr(layer, "lora_B"):
            layer.lora_B.data[...] = rng.normal(scale=0.3, size=layer.lora_B.shape)
    expected = model(IDS)[0].numpy()
    save_adapter(model, str(tmp_path / "a"))
    fresh = tiny_gpt()
    load_adapter(fresh, str(tmp_path / "a"))
    np.testing.assert_allclose(fresh(IDS)[0].numpy(), expected, atol=1e-10)
    merge_and_unload(fresh)
    assert not any(isinstance(m, TrainableTokens) for m in fresh.modules())
    assert fresh.lm_head.weight is fresh.transformer["wte"].weight  # still tied
    np.testing.assert_allclose(fresh.transformer["wte"].weight.data[NEW], delta.data)
    np.testing.assert_allclose(fresh(IDS)[0].numpy(), expected, atol=1e-10)

    manual_seed(0)
    small = GPT(GPTConfig(block_size=16, vocab_size=V0, n_layer=1, n_head=2, n_embd=8)).double()
    with pytest.raises(ValueError, match=r"another base: embedding transformer.wte is \[30, 8\]"):
        load_adapter(small, str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"must be in \[0, 33\)"):
        apply_lora(
            tiny_gpt(), 2, 4, GPT_ATTENTION, trainable_token_indices={"transformer.wte": [40]}
        )
    with pytest.raises(ValueError, match="'lm_head' shares its weight with 'transformer.wte'"):
        apply_lora(tiny_gpt(), 2, 4, GPT_ATTENTION, trainable_token_indices={"lm_head": [1]})


def test_an_untied_output_layer_trains_its_own_rows(tmp_path):
    full, model = tiny_gpt(tie=False), tiny_gpt(tie=False)
    rows = {"transformer.wte": NEW, "lm_head": NEW}
    apply_lora(model, 2, 4, GPT_ATTENTION, trainable_token_indices=rows)
    targets = np.roll(IDS, -1, axis=1)
    model(IDS, targets)[1].backward()
    full(IDS, targets)[1].backward()
    for name, layer in (("wte", model.transformer["wte"]), ("lm_head", model.lm_head)):
        base = full.transformer["wte"] if name == "wte" else full.lm_head
        np.testing.assert_allclose(layer.trainable_tokens_delta.grad, base.weight.grad[NEW],
                                   atol=1e-12, err_msg=name)  # fmt: skip
    model.lm_head.trainable_tokens_delta.data[...] += 1.0
    expected = model(IDS)[0].numpy()
    save_adapter(model, str(tmp_path / "u"))
    fresh = tiny_gpt(tie=False)
    load_adapter(fresh, str(tmp_path / "u"))
    np.testing.assert_allclose(fresh(IDS)[0].numpy(), expected, atol=1e-10)
    merge_and_unload(fresh)
    np.testing.assert_allclose(fresh(IDS)[0].numpy(), expected, atol=1e-10)
