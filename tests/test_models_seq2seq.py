"""Seq2SeqTransformer: shapes, padding masks, causality, cached decoding, weight sharing."""

import math

import numpy as np
import pytest

import numtrans as nt
from numtrans.models import Seq2SeqConfig, Seq2SeqTransformer


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")


def build(**kw):
    c = dict(src_vocab_size=15, tgt_vocab_size=17, d_model=16, nhead=2, num_encoder_layers=2,
             num_decoder_layers=2, dim_feedforward=32, dropout=0.0, max_len=16)  # fmt: skip
    c.update(kw)
    nt.manual_seed(0)
    return Seq2SeqTransformer(Seq2SeqConfig(**c)).double().eval()


def data(seed=0):
    rng = np.random.default_rng(seed)
    src = rng.integers(1, 15, (2, 6))
    src[1, 4:] = 0  # padding
    tgt = rng.integers(1, 17, (2, 5))
    return src, tgt


@pytest.mark.parametrize("norm_first", [False, True])
def test_forward_loss_and_padding(norm_first):
    model = build(norm_first=norm_first)
    src, tgt = data()
    logits, loss = model(src, tgt, targets=tgt)
    assert logits.shape == (2, 5, 17) and abs(loss.item() - math.log(17)) < 1.0
    explicit, _ = model(src, tgt, src_padding_mask=src == 0, tgt_padding_mask=tgt == 0)
    np.testing.assert_array_equal(explicit.data, logits.data)
    src2 = src.copy()
    src2[1, 4:] = 3  # change the padded source tokens but keep the mask
    other, _ = model(src2, tgt, src_padding_mask=src == 0)
    np.testing.assert_allclose(other.data, logits.data, atol=1e-12)
    with pytest.raises(ValueError, match="padding mask shape"):
        model(src, tgt, src_padding_mask=np.zeros((2, 3), bool))


def test_decoder_never_looks_ahead():
    model = build()
    src, tgt = data()
    base = model(src, tgt)[0].data
    tgt2 = tgt.copy()
    tgt2[:, 3] = (tgt2[:, 3] + 1) % 17
    out = model(src, tgt2)[0].data
    np.testing.assert_array_equal(out[:, :3], base[:, :3])
    assert not np.allclose(out[:, 3:], base[:, 3:])


@pytest.mark.parametrize("norm_first", [False, True])
def test_cached_decoding_equals_full_decode(norm_first):
    model = build(norm_first=norm_first)
    src, tgt = data()
    pad = src == 0
    memory = model.encode(src, pad)
    full = model.decode(tgt, memory, pad).data
    cache = model.make_kv_cache()
    with nt.no_grad():
        steps = [model.decode(tgt[:, t : t + 1], memory, pad, kv_cache=cache) for t in range(5)]
    np.testing.assert_allclose(
        np.concatenate([s.data for s in steps], 1), full, rtol=1e-12, atol=1e-12
    )
    with pytest.raises(ValueError, match="kv_cache"):
        model.decode(
            tgt[:, :1], memory, pad, tgt_padding_mask=np.zeros((2, 1), bool), kv_cache=cache
        )


def test_weight_sharing_options():
    base = build(src_vocab_size=17)
    shared = build(src_vocab_size=17, share_embeddings=True, tie_generator=True)
    assert shared.tgt_tok_emb is shared.src_tok_emb
    assert shared.generator.weight is shared.tgt_tok_emb.weight
    assert base.num_parameters() - shared.num_parameters() == 2 * 17 * 16
    with pytest.raises(ValueError, match="share_embeddings"):
        Seq2SeqConfig(src_vocab_size=3, tgt_vocab_size=4, share_embeddings=True)


def test_embeddings_scaled_and_gradcheck():
    model = build(num_encoder_layers=1, num_decoder_layers=1)
    assert abs(model.src_tok_emb.weight.data[1:].std() - 16**-0.5) < 0.05
    assert np.all(model.src_tok_emb.weight.data[0] == 0)
    src, tgt = data()

    def loss(*params):
        return model(src, tgt[:, :-1], targets=tgt[:, 1:])[1]

    assert nt.gradcheck_direction(loss, list(model.parameters()), n_directions=2)
