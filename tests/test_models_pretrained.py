"""save_pretrained / from_pretrained (JSON + safetensors) and parameter/FLOP counting."""

import json
import os

import numpy as np
import pytest

import numtrans as nt
from numtrans.models import (
    GPT,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    GPTConfig,
    Seq2SeqConfig,
    Seq2SeqTransformer,
    format_count,
    gpt_flops_per_token,
    gpt_num_params,
)

pytest.importorskip("safetensors")


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")


def tiny_gpt(**kw):
    nt.manual_seed(0)
    return GPT(GPTConfig(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_embd=16, **kw))


MODELS = {
    "gpt": lambda: tiny_gpt(),
    "gpt_rope_untied": lambda: tiny_gpt(pos="rope", tie_weights=False),
    "bert_mlm": lambda: BertForMaskedLM(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
                                                   num_attention_heads=2, intermediate_size=16)),
    "bert_clf": lambda: BertForSequenceClassification(BertConfig(
        vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, num_labels=1)),
    "seq2seq": lambda: Seq2SeqTransformer(Seq2SeqConfig(
        src_vocab_size=11, tgt_vocab_size=11, d_model=8, nhead=2, num_encoder_layers=1,
        num_decoder_layers=1, dim_feedforward=16, share_embeddings=True, tie_generator=True)),
}  # fmt: skip


def run(model):
    ids = np.random.default_rng(0).integers(1, 11, (2, 5))
    if isinstance(model, GPT):
        return model(ids)[0].data
    if isinstance(model, Seq2SeqTransformer):
        return model(ids, ids)[0].data
    return model(ids).logits.data


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_is_exact(tmp_path, name):
    model = MODELS[name]().eval()
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    loaded = type(model).from_pretrained(tmp_path)
    assert loaded.config == model.config and not loaded.training
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n1 == n2 and p1.dtype == p2.dtype
        np.testing.assert_array_equal(p1.data, p2.data)
    np.testing.assert_array_equal(run(model), run(loaded))


def test_tied_weights_stored_once_and_still_tied(tmp_path):
    from safetensors.numpy import load_file

    model = tiny_gpt()
    model.save_pretrained(tmp_path)
    names = set(load_file(str(tmp_path / "model.safetensors")))
    assert "transformer.wte.weight" in names and "lm_head.weight" not in names
    loaded = GPT.from_pretrained(tmp_path)
    assert loaded.lm_head.weight is loaded.transformer["wte"].weight
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architecture"] == "GPT" and config["n_embd"] == 16


def test_float64_models_stay_float64(tmp_path):
    model = tiny_gpt().double()
    model.save_pretrained(tmp_path)
    assert GPT.from_pretrained(tmp_path).lm_head.weight.dtype == np.float64


def test_clear_errors(tmp_path):
    from safetensors.numpy import load_file, save_file

    with pytest.raises(FileNotFoundError, match="no such model directory"):
        GPT.from_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="config.json"):
        GPT.from_pretrained(tmp_path)
    tiny_gpt().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="holds a GPT"):
        Seq2SeqTransformer.from_pretrained(tmp_path)
    path = str(tmp_path / "model.safetensors")
    tensors = load_file(path)
    tensors["transformer.h.1.mlp.c_fc.weight"] = np.zeros((3, 16), dtype=np.float32)
    tensors["stray"] = np.zeros(2, dtype=np.float32)
    del tensors["transformer.ln_f.bias"]
    save_file(tensors, path)
    with pytest.raises(ValueError) as err:
        GPT.from_pretrained(tmp_path)
    msg = str(err.value)
    assert "'transformer.h.1.mlp.c_fc.weight' has shape (3, 16)" in msg and "(64, 16)" in msg
    assert "missing tensor 'transformer.ln_f.bias'" in msg and "unexpected tensor 'stray'" in msg
    config = json.loads((tmp_path / "config.json").read_text())
    config["n_hidden"] = 3
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="n_hidden"):
        GPT.from_pretrained(tmp_path)


def test_save_is_atomic_and_overwrites(tmp_path):
    model = tiny_gpt()
    model.save_pretrained(tmp_path)
    model.transformer["ln_f"].weight.data[...] = 2.0
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]  # no temp files
    assert np.all(GPT.from_pretrained(tmp_path).transformer["ln_f"].weight.data == 2.0)


def test_gpt2_small_reports_124m_parameters():
    config = GPTConfig()  # GPT-2 small: 12 layers, 12 heads, 768 wide, 1024 positions, tied
    assert gpt_num_params(config) == 124_439_808
    assert format_count(gpt_num_params(config)) == "124.44M"
    assert gpt_num_params(config, non_embedding=True) == 124_439_808 - 1024 * 768


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"tie_weights": False},
        {"bias": False},
        {"pos": "rope"},
        {"pos": "rope", "bias": False, "tie_weights": False},
    ],
)
def test_parameter_formula_matches_built_model(kw):
    model = tiny_gpt(**kw)
    assert gpt_num_params(model.config) == model.num_params() == model.num_parameters()
    assert gpt_num_params(model.config, True) == model.num_params(non_embedding=True)


def test_flops_per_token_convention():
    config = GPTConfig()
    n = gpt_num_params(config, non_embedding=True)
    assert gpt_flops_per_token(config) == 6 * n + 12 * 12 * 1024 * 768
    assert gpt_flops_per_token(config, seq_len=256, training=False) == 2 * n + 4 * 12 * 256 * 768
    assert tiny_gpt().flops_per_token() == gpt_flops_per_token(tiny_gpt().config)
