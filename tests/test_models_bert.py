"""BertModel and its heads: names, padding, parity with a PyTorch post-norm layer, losses, grads."""

import numpy as np
import pytest

import numtrans as nt
from numtrans.functional import cross_entropy, mse_loss
from numtrans.models import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")


def config(**kw):
    c = dict(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=32, max_position_embeddings=12)  # fmt: skip
    c.update(kw)
    return BertConfig(**c)


def build(cls=BertModel, **kw):
    nt.manual_seed(0)
    return cls(config(**kw)).double().eval()


def batch(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 30, (2, 6))
    mask = np.ones((2, 6), dtype=np.int64)
    mask[1, 4:] = 0
    ids[1, 4:] = 0  # [PAD]
    types = np.zeros((2, 6), dtype=np.int64)
    types[:, 3:] = 1
    return ids, types, mask


def test_hugging_face_names_and_shapes():
    model = build(num_hidden_layers=1)
    names = list(model.state_dict())
    assert names[:5] == [
        "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
    ]  # fmt: skip
    layer = [n for n in names if n.startswith("encoder.layer.0.")]
    assert [n[len("encoder.layer.0.") :] for n in layer] == [
        "attention.self.query.weight", "attention.self.query.bias",
        "attention.self.key.weight", "attention.self.key.bias",
        "attention.self.value.weight", "attention.self.value.bias",
        "attention.output.dense.weight", "attention.output.dense.bias",
        "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
        "intermediate.dense.weight", "intermediate.dense.bias",
        "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias",
    ]  # fmt: skip
    assert names[-2:] == ["pooler.dense.weight", "pooler.dense.bias"]
    ids, types, mask = batch()
    out = model(ids, types, mask)
    assert out.last_hidden_state.shape == (2, 6, 16) and out.pooler_output.shape == (2, 16)
    assert np.all(model.embeddings.word_embeddings.weight.data[0] == 0)  # pad row


def test_padding_is_invisible_and_never_nan():
    model = build()
    ids, types, mask = batch()
    out = model(ids, types, mask).last_hidden_state.data
    ids2 = ids.copy()
    ids2[1, 4:] = 7  # different content under the padding
    out2 = model(ids2, types, mask).last_hidden_state.data
    np.testing.assert_allclose(out[1, :4], out2[1, :4], atol=1e-12)
    short = model(ids[1:, :4], types[1:, :4], mask[1:, :4]).last_hidden_state.data
    np.testing.assert_allclose(out[1, :4], short[0], atol=1e-12)
    all_pad = model(ids, types, np.zeros_like(mask))
    assert np.isfinite(all_pad.last_hidden_state.data).all()


def test_attention_is_bidirectional():
    model = build()
    ids, types, mask = batch()
    base = model(ids, types, mask).last_hidden_state.data
    ids2 = ids.copy()
    ids2[0, 5] = (ids2[0, 5] + 1) % 30
    assert not np.allclose(model(ids2, types, mask).last_hidden_state.data[0, 0], base[0, 0])


def test_layer_matches_torch_post_norm_encoder_layer():
    torch = pytest.importorskip("torch")
    model = build(num_hidden_layers=1, hidden_act="gelu")
    layer = model.encoder.layer[0]
    tl = torch.nn.TransformerEncoderLayer(
        16, 2, 32, dropout=0.0, activation="gelu", layer_norm_eps=1e-12, batch_first=True,
        dtype=torch.float64,
    )  # fmt: skip
    a = layer.attention
    cat = np.concatenate
    weights = {
        "self_attn.in_proj_weight": cat([a.self.query.weight.data, a.self.key.weight.data, a.self.value.weight.data]),
        "self_attn.in_proj_bias": cat([a.self.query.bias.data, a.self.key.bias.data, a.self.value.bias.data]),
        "self_attn.out_proj.weight": a.output.dense.weight.data, "self_attn.out_proj.bias": a.output.dense.bias.data,
        "linear1.weight": layer.intermediate.dense.weight.data, "linear1.bias": layer.intermediate.dense.bias.data,
        "linear2.weight": layer.output.dense.weight.data, "linear2.bias": layer.output.dense.bias.data,
        "norm1.weight": a.output.LayerNorm.weight.data, "norm1.bias": a.output.LayerNorm.bias.data,
        "norm2.weight": layer.output.LayerNorm.weight.data, "norm2.bias": layer.output.LayerNorm.bias.data,
    }  # fmt: skip
    tl.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
    x = np.random.default_rng(0).standard_normal((2, 5, 16))
    pad = np.array([[False] * 5, [False, False, False, True, True]])
    ours = layer(nt.Tensor(x), ~pad[:, None, None, :]).data
    theirs = tl(torch.tensor(x), src_key_padding_mask=torch.tensor(pad)).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_masked_lm_head():
    model = build(BertForMaskedLM)
    dec = model.cls.predictions.decoder
    assert dec.weight is model.bert.embeddings.word_embeddings.weight
    assert dec.bias is model.cls.predictions.bias and model.bert.pooler is None
    ids, types, mask = batch()
    labels = np.full_like(ids, -100)
    labels[0, 2], labels[1, 1] = 5, 9
    out = model(ids, types, mask, labels=labels)
    assert out.logits.shape == (2, 6, 30)
    expected = cross_entropy(out.logits.reshape(12, 30), labels.reshape(-1)).item()
    assert out.loss.item() == pytest.approx(expected)
    sd = model.state_dict()
    assert "cls.predictions.bias" in sd and "cls.predictions.decoder.bias" in sd

    def loss(*params):
        return model(ids, types, mask, labels=labels).loss

    assert nt.gradcheck_direction(loss, list(model.parameters()), n_directions=2)


def test_sequence_classification_and_regression():
    ids, types, mask = batch()
    clf = build(BertForSequenceClassification, num_labels=3)
    out = clf(ids, types, mask, labels=np.array([2, 0]))
    assert out.logits.shape == (2, 3)
    assert out.loss.item() == pytest.approx(cross_entropy(out.logits, np.array([2, 0])).item())
    for reg in (build(BertForSequenceClassification, num_labels=1),
                build(BertForSequenceClassification, num_labels=1, problem_type="regression")):  # fmt: skip
        assert reg.is_regression
        out = reg(ids, types, mask, labels=np.array([0.5, -1.0]))
        assert out.logits.shape == (2, 1)
        expected = mse_loss(out.logits, nt.Tensor(np.array([[0.5], [-1.0]]))).item()
        assert out.loss.item() == pytest.approx(expected)

        def loss(*params, reg=reg):
            return reg(ids, types, mask, labels=np.array([0.5, -1.0])).loss

        assert nt.gradcheck_direction(loss, list(reg.parameters()), n_directions=2)
    with pytest.raises(ValueError, match="problem_type"):
        BertForSequenceClassification(config(problem_type="multi_label_classification"))


def test_errors_and_dropout():
    model = build(hidden_dropout_prob=0.2)
    ids, types, mask = batch()
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(np.ones((1, 13), dtype=np.int64))
    with pytest.raises(ValueError, match="attention_mask"):
        model(ids, types, mask[:, :3])
    with pytest.raises(ValueError, match="hidden_act"):
        BertModel(config(hidden_act="swish"))
    a = model(ids, types, mask).last_hidden_state.data
    model.train()
    assert not np.allclose(a, model(ids, types, mask).last_hidden_state.data)
