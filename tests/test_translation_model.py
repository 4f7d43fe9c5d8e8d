"""Seq2SeqTransformer additions for translation: label smoothing in the loss and the
cross-attention weights used for the heatmaps."""

import numpy as np
import pytest

import numtrans as nt
from numtrans.functional import cross_entropy
from numtrans.models import Seq2SeqConfig, Seq2SeqTransformer


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")


@pytest.fixture
def model():
    nt.manual_seed(0)
    cfg = Seq2SeqConfig(src_vocab_size=13, tgt_vocab_size=11, d_model=16, nhead=2,
                        num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=32,
                        dropout=0.0, max_len=16)  # fmt: skip
    return Seq2SeqTransformer(cfg).double().eval()


def batch():
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(1, 13, (2, 6)), rng.integers(1, 11, (2, 5))
    src[1, 3:] = 0  # padding
    return src, tgt


def test_label_smoothing_in_the_loss(model):
    src, tgt = batch()
    targets = tgt.copy()
    targets[1, -1] = 0  # pad_idx: ignored
    logits, loss = model(src, tgt, targets=targets, label_smoothing=0.1)
    expected = cross_entropy(
        logits.reshape(-1, 11), targets.reshape(-1), ignore_index=0, label_smoothing=0.1
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    assert loss.item() > model(src, tgt, targets=targets)[1].item()  # smoothing costs nats


def test_cross_attention_weights(model):
    src, tgt = batch()
    before = model(src, tgt)[0].data
    w = model.cross_attention_weights(src, tgt)
    assert w.shape == (2, 2, 2, 5, 6)  # (layers, batch, heads, T, S)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)
    assert np.all(w[:, 1, :, :, 3:] == 0)  # padded source positions get no attention
    for layer in model.transformer.decoder.layers:  # the wrappers are gone again
        assert "forward" not in vars(layer.multihead_attn)
    np.testing.assert_array_equal(model(src, tgt)[0].data, before)
    # the first sentence alone (no padding) has the same maps
    alone = model.cross_attention_weights(src[:1], tgt[:1])
    np.testing.assert_allclose(alone[:, 0], w[:, 0], atol=1e-12)
