"""BertModel's hidden states and attentions (vs transformers) and the intermediate-layer
distillation terms (TinyBERT's hidden-state MSE, MiniLM's attention KL), gradchecked in float64."""

from __future__ import annotations

import numpy as np
import pytest

import numtrans as nt
from numtrans.compress import attention_kl_loss, hidden_state_loss, layer_map
from numtrans.models.bert import BertConfig, BertModel

CFG = dict(vocab_size=40, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
           intermediate_size=32, max_position_embeddings=16)  # fmt: skip
IDS = np.array([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])
MASK = (IDS != 0).astype(np.int64)


def probs(shape, seed, mask=None):
    """Random attention rows (..., T, T) that sum to 1 over the unmasked keys."""
    z = np.random.default_rng(seed).normal(size=shape)
    if mask is not None:
        z = np.where(mask[:, None, None, :].astype(bool), z, -np.inf)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_outputs_match_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    nt.manual_seed(0)
    ours = BertModel(BertConfig(**CFG)).eval()
    hf_cfg = transformers.BertConfig(**CFG, attn_implementation="eager")
    theirs = transformers.BertModel(hf_cfg).eval()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()}, strict=False)
    with nt.no_grad():
        out = ours(IDS, attention_mask=MASK, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        ref = theirs(torch.tensor(IDS), attention_mask=torch.tensor(MASK),
                     output_hidden_states=True, output_attentions=True)  # fmt: skip
    assert len(out.hidden_states) == 4 and len(out.attentions) == 3
    for a, b in zip(out.hidden_states, ref.hidden_states):
        np.testing.assert_allclose(a.data, b.numpy(), atol=2e-5)
    for a, b in zip(out.attentions, ref.attentions):
        assert a.shape == (2, 2, 5, 5)
        np.testing.assert_allclose(a.data, b.numpy(), atol=2e-6)
    assert out.hidden_states[-1] is out.last_hidden_state


def test_default_path_unchanged_and_flags_independent():
    nt.manual_seed(1)
    model = BertModel(BertConfig(**CFG)).eval()
    with nt.no_grad():
        plain = model(IDS, attention_mask=MASK)
        only_h = model(IDS, attention_mask=MASK, output_hidden_states=True)
        only_a = model(IDS, attention_mask=MASK, output_attentions=True)
    assert plain.hidden_states is None and plain.attentions is None
    assert only_h.attentions is None and len(only_h.hidden_states) == 4
    assert only_a.hidden_states is None and len(only_a.attentions) == 3
    np.testing.assert_allclose(only_a.last_hidden_state.data, plain.last_hidden_state.data,
                               atol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(only_h.last_hidden_state.data, plain.last_hidden_state.data)
    # padding keys get no attention; every real query row is a distribution
    a = only_a.attentions[0].data
    assert np.all(a[1, :, :, 3:] == 0)
    np.testing.assert_allclose(a.sum(-1), 1.0, atol=1e-6)


def test_hidden_states_flow_gradients_with_checkpointing():
    nt.manual_seed(2)
    model = BertModel(BertConfig(**CFG))
    model.encoder.gradient_checkpointing = True
    out = model(IDS, attention_mask=MASK, output_hidden_states=True)
    out.hidden_states[1].sum().backward()  # the first layer's output: reaches the embeddings
    assert np.abs(model.embeddings.word_embeddings.weight.grad).max() > 0
    assert model.encoder.layer[2].output.dense.weight.grad is None  # after layer 1: untouched


def test_layer_map():
    assert layer_map(3, 6) == [0, 2, 4, 6] and layer_map(2, 6) == [0, 3, 6]
    assert layer_map(4, 4) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="cannot map"):
        layer_map(7, 6)


def test_hidden_state_loss_value_and_gradcheck():
    rng = np.random.default_rng(0)
    B, T, C = 2, 5, 3
    teacher = [rng.normal(size=(B, T, C)) for _ in range(5)]  # 4 layers + embeddings
    student = [nt.Tensor(rng.normal(size=(B, T, C)), requires_grad=True) for _ in range(3)]
    got = hidden_state_loss(student, teacher, MASK).item()
    m = MASK[:, :, None]
    want = np.mean([((s.data - teacher[g]) ** 2 * m).sum() / (m.sum() * C)
                    for s, g in zip(student, [0, 2, 4])])  # fmt: skip
    assert got == pytest.approx(want, rel=1e-12)
    assert nt.gradcheck(lambda *s: hidden_state_loss(list(s), teacher, MASK), tuple(student))
    # a padded position changes nothing
    teacher[2][1, 4] += 100.0
    assert hidden_state_loss(student, teacher, MASK).item() == pytest.approx(got, rel=1e-12)
    with pytest.raises(ValueError, match="attention_mask"):
        hidden_state_loss(student, teacher, MASK[:, :3])


def test_attention_kl_loss_value_and_gradcheck():
    B, H, T = 2, 2, 5
    a_t = probs((B, H, T, T), 0, MASK)
    z = nt.Tensor(np.random.default_rng(1).normal(size=(B, H, T, T)), requires_grad=True)
    keep = MASK[:, None, None, :].astype(bool)

    def loss(z):  # the student's probabilities as its attention makes them: a masked softmax
        return attention_kl_loss(z.masked_fill(~np.broadcast_to(keep, z.shape), -np.inf)
                                 .softmax(axis=-1), a_t, MASK)  # fmt: skip

    a_s = probs((B, H, T, T), 1, MASK)
    real = MASK.astype(bool)[:, None, :, None]  # real queries
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(a_t > 0, a_t * (np.log(a_t) - np.log(a_s)), 0.0)
    want = (kl * real).sum() / (real.sum() * H)
    assert loss(z).item() == pytest.approx(want, rel=1e-10)
    assert nt.gradcheck(loss, (z,))
    assert attention_kl_loss(nt.Tensor(a_t), a_t, MASK).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="must both be"):
        attention_kl_loss(nt.Tensor(a_t[:, :1]), a_t)


def test_recipe_hidden_term_pulls_student_toward_teacher(tmp_path):
    from types import SimpleNamespace

    from numtrans.compress.student import student_from_teacher
    from numtrans.finetune.data import LabeledData, LabelMap
    from numtrans.models.bert_heads import BertForSequenceClassification
    from numtrans.recipes.distill import DistillConfig, distill
    from numtrans.recipes.finetune import save_finetuned
    from numtrans.tokenizers import WordPieceTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "f"]
    nt.manual_seed(0)
    cfg = BertConfig(**{**CFG, "vocab_size": len(words), "num_hidden_layers": 4})
    teacher = BertForSequenceClassification(cfg).eval()
    for name, p in teacher.named_parameters():  # BERT's 0.02 init leaves every layer close to
        if "encoder" in name and name.endswith("weight") and "LayerNorm" not in name:
            p.data *= 40.0  # the identity: large weights make the layers (and the gap) matter
    tok = WordPieceTokenizer(words)
    save_finetuned(str(tmp_path / "t"), teacher, tok, LabelMap("classification", ["n", "p"]),
                   SimpleNamespace(max_length=16))  # fmt: skip
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words[5:], size=4)) for _ in range(32)]
    data = LabeledData(texts, ["p" if "a" in t else "n" for t in texts], list(range(32)))
    batch = tok(texts, padding=True)
    ids, mask = np.asarray(batch["input_ids"]), np.asarray(batch["attention_mask"])

    def gap(student):  # TinyBERT's hidden-state loss of a student against the teacher
        with nt.no_grad():
            s = student.eval().bert(ids, None, mask, output_hidden_states=True).hidden_states
            t = teacher.bert(ids, None, mask, output_hidden_states=True).hidden_states
            return hidden_state_loss(s, [h.data for h in t], mask).item()

    before = gap(student_from_teacher(teacher, 2))
    run = dict(num_layers=2, epochs=6, batch_size=8, lr=3e-3, alpha=0.0, warmup_fraction=0.0)
    plain = distill(str(tmp_path / "t"), data, DistillConfig(**run), val=data, say=lambda *a: 0)
    pulled = distill(str(tmp_path / "t"), data, DistillConfig(**run, hidden_weight=5.0),
                     val=data, say=lambda *a: 0)  # fmt: skip
    assert gap(pulled.model) < 0.8 * before and gap(pulled.model) < 0.65 * gap(plain.model)
    with pytest.raises(ValueError, match="must be >= 0"):
        DistillConfig(attention_weight=-0.1)
