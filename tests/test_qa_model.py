"""BertForQuestionAnswering against transformers' class with the same weights, and its gradients."""

from __future__ import annotations

import numpy as np
import pytest

import numtrans as nt
from numtrans.models import BertConfig, BertForQuestionAnswering

RNG = np.random.default_rng(0)


def tiny(**kw):
    base = dict(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)  # fmt: skip
    return BertConfig(**{**base, **kw})


def randomized(model):
    for _, p in model.named_parameters():  # non-zero biases/LayerNorm so every weight matters
        p.data = RNG.normal(0, 0.2, size=p.data.shape).astype(np.float64)
    return model.eval()


def inputs():
    ids = RNG.integers(1, 50, size=(3, 11))
    types = np.zeros_like(ids)
    types[:, 5:] = 1
    mask = np.ones_like(ids)
    mask[2, 8:] = 0
    return ids, types, mask


def test_parameter_names_follow_hugging_face():
    names = set(BertForQuestionAnswering(tiny()).state_dict())
    assert {"qa_outputs.weight", "qa_outputs.bias"} <= names
    assert "bert.embeddings.word_embeddings.weight" in names
    assert not any(n.startswith("bert.pooler") for n in names)  # HF: add_pooling_layer=False


def test_logits_and_loss_equal_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    ours = randomized(BertForQuestionAnswering(tiny()))
    hf_config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, attn_implementation="eager",
    )  # fmt: skip
    theirs = transformers.BertForQuestionAnswering(hf_config).double().eval()
    state = {k: torch.tensor(v) for k, v in ours.state_dict().items()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    assert not unexpected and all("position_ids" in m for m in missing)
    ids, types, mask = inputs()
    start, end = np.array([3, 7, 0]), np.array([4, 40, 0])  # 40: outside -> ignored, as in HF
    out = ours(ids, types, mask, start_positions=start, end_positions=end)
    with torch.no_grad():
        ref = theirs(
            input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
            attention_mask=torch.tensor(mask), start_positions=torch.tensor(start),
            end_positions=torch.tensor(end),
        )  # fmt: skip
    assert out.start_logits.shape == (3, 11) and out.end_logits.shape == (3, 11)
    np.testing.assert_allclose(out.start_logits.numpy(), ref.start_logits.numpy(), atol=1e-6)
    np.testing.assert_allclose(out.end_logits.numpy(), ref.end_logits.numpy(), atol=1e-6)
    np.testing.assert_allclose(float(out.loss.numpy()), ref.loss.item(), atol=1e-6)


def test_qa_outputs_gradient_matches_finite_differences():
    model = randomized(BertForQuestionAnswering(tiny()))
    ids, types, mask = inputs()
    start, end = np.array([3, 7, 1]), np.array([4, 9, 6])

    def loss():
        with nt.no_grad():
            return float(model(ids, types, mask, start, end).loss.numpy())

    model.zero_grad()
    model(ids, types, mask, start_positions=start, end_positions=end).loss.backward()
    w = model.qa_outputs.weight
    grad = w.grad.copy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
    assert np.abs(model.bert.embeddings.word_embeddings.weight.grad).sum() > 0  # reaches the body
    eps = 1e-6
    for idx in [(0, 0), (1, 5), (0, 15), (1, 9)]:
        old = w.data[idx]
        w.data[idx] = old + eps
        up = loss()
        w.data[idx] = old - eps
        down = loss()
        w.data[idx] = old
        np.testing.assert_allclose(grad[idx], (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)


def test_save_and_reload(tmp_path):
    model = randomized(BertForQuestionAnswering(tiny()))
    model.save_pretrained(tmp_path)
    again = BertForQuestionAnswering.from_pretrained(tmp_path).eval()
    ids, types, mask = inputs()
    with nt.no_grad():
        a, b = model(ids, types, mask), again(ids, types, mask)
    np.testing.assert_allclose(a.start_logits.numpy(), b.start_logits.numpy(), atol=1e-6)
