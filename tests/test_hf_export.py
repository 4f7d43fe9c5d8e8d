"""Export to Hugging Face ``transformers`` (and back): tiny random models, the same logits."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import numtrans as nt
from numtrans.models import (
    GPT,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    GPTConfig,
)
from numtrans.models.gpt_heads import GPTForSequenceClassification
from numtrans.models.hf import export_hf

RNG = np.random.default_rng(0)


def tiny_bert(**kw) -> BertConfig:
    return BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=32, max_position_embeddings=32, **kw,
    )  # fmt: skip


def tiny_gpt(**kw) -> GPTConfig:
    return GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=16, **kw)


def randomize(model):
    """Non-trivial weights everywhere (zero biases and unit LayerNorms would hide mistakes)."""
    for p in model.parameters():
        p.data[...] = RNG.normal(0, 0.2, size=p.shape).astype(p.dtype)
    return model.eval()


def batch(vocab: int, B=3, T=7):
    ids = RNG.integers(1, vocab, size=(B, T))
    mask = np.ones((B, T), dtype=np.int64)
    mask[1, 5:] = 0  # one padded row
    ids[mask == 0] = 0
    return ids, mask


@pytest.fixture(scope="module")
def transformers():
    pytest.importorskip("torch")
    return pytest.importorskip("transformers")


def run_hf(model, **inputs):
    import torch

    with torch.no_grad():
        return model(**{k: torch.as_tensor(v) for k, v in inputs.items()})


def test_gpt_exports_as_gpt2_lm_head_model(transformers, tmp_path):
    for approximate in ("none", "tanh"):
        model = randomize(GPT(tiny_gpt(gelu_approximate=approximate)))
        export_hf(model, tmp_path / approximate)
        config = json.loads((tmp_path / approximate / "config.json").read_text())
        assert config["architectures"] == ["GPT2LMHeadModel"]
        hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / approximate).eval()
        ids = RNG.integers(0, 40, size=(2, 9))
        with nt.no_grad():
            ours, _ = model(ids)
        theirs = run_hf(hf, input_ids=ids).logits.numpy()
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-5)


def test_untied_gpt_keeps_its_lm_head(transformers, tmp_path):
    model = randomize(GPT(tiny_gpt(tie_weights=False)))
    export_hf(model, tmp_path)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = RNG.integers(0, 40, size=(1, 5))
    with nt.no_grad():
        ours, _ = model(ids)
    np.testing.assert_allclose(ours.numpy(), run_hf(hf, input_ids=ids).logits.numpy(), atol=1e-5)


def test_gpt_classifier_exports_with_last_token_pooling(transformers, tmp_path):
    model = randomize(
        GPTForSequenceClassification.from_gpt(GPT(tiny_gpt()), num_labels=3, pad_token_id=0)
    )
    export_hf(model, tmp_path)
    hf = transformers.GPT2ForSequenceClassification.from_pretrained(tmp_path).eval()
    ids, mask = batch(40)
    with nt.no_grad():
        ours = model(ids, attention_mask=mask).logits.numpy()
    theirs = run_hf(hf, input_ids=ids, attention_mask=mask).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("act", ["gelu", "gelu_new"])
def test_bert_model_exports_and_matches(transformers, tmp_path, act):
    model = randomize(BertModel(tiny_bert(hidden_act=act)))
    export_hf(model, tmp_path)
    hf = transformers.BertModel.from_pretrained(tmp_path).eval()
    ids, mask = batch(50)
    types = np.zeros_like(ids)
    types[:, 4:] = 1
    with nt.no_grad():
        ours = model(ids, types, mask)
    theirs = run_hf(hf, input_ids=ids, token_type_ids=types, attention_mask=mask)
    real = mask.astype(bool)
    np.testing.assert_allclose(
        ours.last_hidden_state.numpy()[real], theirs.last_hidden_state.numpy()[real], atol=1e-5
    )
    np.testing.assert_allclose(ours.pooler_output.numpy(), theirs.pooler_output.numpy(), atol=1e-5)


def test_bert_heads_export(transformers, tmp_path):
    ids, mask = batch(50)
    mlm = randomize(BertForMaskedLM(tiny_bert()))
    export_hf(mlm, tmp_path / "mlm")
    hf = transformers.BertForMaskedLM.from_pretrained(tmp_path / "mlm").eval()
    with nt.no_grad():
        ours = mlm(ids, attention_mask=mask).logits.numpy()
    theirs = run_hf(hf, input_ids=ids, attention_mask=mask).logits.numpy()
    real = mask.astype(bool)
    np.testing.assert_allclose(ours[real], theirs[real], atol=1e-5)

    clf = randomize(BertForSequenceClassification(tiny_bert(num_labels=3)))
    export_hf(clf, tmp_path / "clf")
    hf = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "clf").eval()
    with nt.no_grad():
        ours = clf(ids, attention_mask=mask).logits.numpy()
    theirs = run_hf(hf, input_ids=ids, attention_mask=mask).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_mean_pooled_classifier_refuses_export(tmp_path):
    clf = BertForSequenceClassification(tiny_bert(classifier_pooling="mean"))
    with pytest.raises(ValueError, match="pooler"):
        export_hf(clf, tmp_path)
    export_hf(clf.bert, tmp_path)  # the encoder alone is fine


def test_round_trip_through_the_hf_layout(tmp_path):
    """Exported directories load back into numtrans (the Hugging Face loading path)."""
    ids, mask = batch(50)
    bert = randomize(BertModel(tiny_bert()))
    export_hf(bert, tmp_path / "bert")
    back = BertModel.from_pretrained(str(tmp_path / "bert"))
    with nt.no_grad():
        a, b = bert(ids, attention_mask=mask), back(ids, attention_mask=mask)
    np.testing.assert_array_equal(a.last_hidden_state.numpy(), b.last_hidden_state.numpy())

    mlm = randomize(BertForMaskedLM(tiny_bert()))
    export_hf(mlm, tmp_path / "mlm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        body = BertModel.from_pretrained(str(tmp_path / "mlm"))  # drops bert. and cls.*
    assert body.pooler is None and any("ignored" in str(w.message) for w in caught)
    np.testing.assert_array_equal(
        body.embeddings.word_embeddings.weight.numpy(),
        mlm.bert.embeddings.word_embeddings.weight.numpy(),
    )

    gpt = randomize(GPT(tiny_gpt()))
    export_hf(gpt, tmp_path / "gpt")
    back = GPT.from_pretrained(str(tmp_path / "gpt"))
    x = RNG.integers(0, 40, size=(2, 6))
    with nt.no_grad():
        np.testing.assert_array_equal(gpt(x)[0].numpy(), back(x)[0].numpy())


def test_wrong_family_and_unsupported_models(tmp_path):
    export_hf(randomize(GPT(tiny_gpt())), tmp_path / "gpt")
    with pytest.raises(ValueError, match="cannot load into BertModel"):
        BertModel.from_pretrained(str(tmp_path / "gpt"))
    with pytest.raises(ValueError, match="pos='learned'"):
        export_hf(GPT(tiny_gpt(pos="rope")), tmp_path / "rope")
    (tmp_path / "pt").mkdir()
    (tmp_path / "pt" / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "pt" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="pickled"):
        BertModel.from_pretrained(str(tmp_path / "pt"))
