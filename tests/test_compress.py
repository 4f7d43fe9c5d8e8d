"""Distillation loss (gradchecked, vs torch), teacher cache, int8 / 4-bit quantization."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import numtrans as nt
from numtrans.compress import (
    QuantizedEmbedding,
    QuantizedLinear,
    distillation_loss,
    load_quantized,
    quantize,
    save_quantized,
    soft_target_loss,
    teacher_logits_cached,
)
from numtrans.models.bert import BertConfig, BertModel
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.nn.linear import Linear


def logits(seed, shape=(4, 5)):
    return np.random.default_rng(seed).normal(size=shape) * 2


def test_soft_and_full_loss_gradcheck():
    t, y = logits(1), np.array([0, 3, 1, 4])
    s = nt.Tensor(logits(0), requires_grad=True)
    assert nt.gradcheck(lambda x: soft_target_loss(x, t, 3.0), (s,))
    assert nt.gradcheck(lambda x: distillation_loss(x, t, y, 2.0, 0.3), (s,))


def test_matches_torch_and_formula():
    torch = pytest.importorskip("torch")
    s_np, t_np, y = logits(2), logits(3), np.array([1, 0, 2, 4])
    T, alpha = 2.5, 0.7
    s = nt.Tensor(s_np, requires_grad=True)
    loss = distillation_loss(s, t_np, y, T, alpha)
    loss.backward()
    st = torch.tensor(s_np, requires_grad=True)
    kl = torch.nn.functional.kl_div(
        torch.log_softmax(st / T, -1),
        torch.log_softmax(torch.tensor(t_np) / T, -1),
        reduction="batchmean",
        log_target=True,
    )
    ref = alpha * T * T * kl + (1 - alpha) * torch.nn.functional.cross_entropy(st, torch.tensor(y))
    ref.backward()
    np.testing.assert_allclose(loss.data, ref.item(), rtol=1e-12)
    np.testing.assert_allclose(s.grad, st.grad.numpy(), rtol=1e-10, atol=1e-14)
    # Identical teacher and student: the soft term vanishes.
    assert abs(float(soft_target_loss(nt.Tensor(s_np), s_np, T).data)) < 1e-12


def test_teacher_cache(tmp_path):
    calls = []

    def forward(batch):
        calls.append(len(batch))
        return batch.astype(np.float32) * 2

    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    path = str(tmp_path / "teacher.safetensors")
    first = teacher_logits_cached(forward, x, batch_size=2, cache=path)
    again = teacher_logits_cached(forward, x, batch_size=2, cache=path)
    assert calls == [2, 2, 1]  # the second call did not run the teacher
    np.testing.assert_array_equal(first, again)
    changed = teacher_logits_cached(forward, x + 1, batch_size=5, cache=path)
    assert calls[-1] == 5
    np.testing.assert_array_equal(changed, (x + 1) * 2)


def tiny_bert():
    nt.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
    )
    return BertModel(cfg).eval()


def hidden(model, ids):
    out = model(ids)
    out = out[0] if isinstance(out, tuple) else getattr(out, "last_hidden_state", out)
    return out.data


def test_quantize_int8_model(tmp_path):
    model = tiny_bert()
    ids = np.random.default_rng(0).integers(1, 50, (2, 7))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    q = quantize(model)
    for k, v in model.state_dict().items():  # the original is untouched
        np.testing.assert_array_equal(v, before[k])
    assert not any(isinstance(m, QuantizedLinear) for m in model.modules())
    layers = [m for m in q.modules() if isinstance(m, QuantizedLinear)]
    # 6 Linear per encoder layer (q, k, v, attention output, 2 feed-forward) + the pooler
    assert len(layers) == 2 * 6 + 1 and all(m.weight_int8.dtype == np.int8 for m in layers)
    ref, got = hidden(model, ids), hidden(q, ids)
    err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    assert 0 < err < 0.05
    save_quantized(q, str(tmp_path / "q"))
    cfg = json.load(open(tmp_path / "q" / "config.json"))
    assert cfg["quantization"]["bits"] == 8
    back = load_quantized(BertModel, str(tmp_path / "q"))
    np.testing.assert_array_equal(hidden(back, ids), got)
    q_size = os.path.getsize(tmp_path / "q" / "model.safetensors")
    model.save_pretrained(str(tmp_path / "f"))
    # every matrix and table in int8; at this toy size the float biases, norms, scales and the
    # file header still weigh a third (MiniLM: test_minilm_int8_is_3_5x_smaller)
    assert os.path.getsize(tmp_path / "f" / "model.safetensors") / q_size > 2.5
    with pytest.raises(ValueError, match="float model"):
        load_quantized(BertModel, str(tmp_path / "f"))
    with pytest.raises(
        ValueError, match=r"quantized BertModel \(8-bit\): load it with .*load_quantized"
    ):
        BertModel.from_pretrained(str(tmp_path / "q"))
    # float weights beside the int8 config: one line naming the mismatch
    os.replace(tmp_path / "f" / "model.safetensors", tmp_path / "q" / "model.safetensors")
    with pytest.raises(ValueError, match="do not belong together|holds no int8"):
        load_quantized(BertModel, str(tmp_path / "q"))


def test_quantized_embedding():
    model = tiny_bert()
    q = quantize(model)
    emb = q.embeddings.word_embeddings
    assert isinstance(emb, QuantizedEmbedding) and emb.weight_int8.dtype == np.int8
    w = model.embeddings.word_embeddings.weight.data
    err = np.abs(emb.dequantized_weight() - w)
    assert (err <= emb.weight_scale[:, None] / 2 + 1e-7).all()  # rounding: half a step per row
    ids = np.array([[3, 7, 3]])
    np.testing.assert_allclose(emb(ids).data[0], emb.dequantized_weight()[[3, 7, 3]], rtol=1e-6)
    kept = quantize(model, embeddings=False)
    assert not any(isinstance(m, QuantizedEmbedding) for m in kept.modules())
    assert kept.quantization["embeddings"] == []


def test_gpt_tied_lm_head(tmp_path):
    nt.manual_seed(0)
    gpt = GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=32)).eval()
    q = quantize(gpt)
    assert q.quantization["tied"] == [["lm_head", "transformer.wte"]]
    assert q.lm_head.weight_int8 is q.transformer["wte"].weight_int8  # still one table
    idx = np.random.default_rng(0).integers(0, 40, (2, 9))
    ref, got = gpt(idx)[0].data, q(idx)[0].data
    assert np.abs(got - ref).max() < 0.1 * np.abs(ref).max()
    save_quantized(q, str(tmp_path))
    from safetensors.numpy import load_file

    stored = load_file(str(tmp_path / "model.safetensors"))
    assert "transformer.wte.weight_int8" in stored and "lm_head.weight_int8" not in stored
    back = load_quantized(GPT, str(tmp_path))
    assert back.lm_head.weight_int8 is back.transformer["wte"].weight_int8
    np.testing.assert_array_equal(back(idx)[0].data, got)


def test_gpt_tied_lm_head_4bit_stored_once(tmp_path):
    from safetensors.numpy import load_file

    nt.manual_seed(0)
    gpt = GPT(GPTConfig(block_size=16, vocab_size=40, n_layer=2, n_head=2, n_embd=32)).eval()
    q = quantize(gpt, bits=4, group_size=16)
    wte = q.transformer["wte"]
    assert q.quantization["tied"] == [["lm_head", "transformer.wte"]]
    assert wte.bits == 4 and q.transformer["wpe"].bits == 8  # only the tied table goes 4-bit
    assert q.lm_head.weight_int4 is wte.weight_int4 and q.lm_head.weight_scale is wte.weight_scale
    np.testing.assert_array_equal(wte.dequantized_weight(), q.lm_head.dequantized_weight())
    w = gpt.transformer["wte"].weight.data
    assert np.abs(wte.dequantized_weight() - w).max() <= np.abs(w).max() / 14 + 1e-7  # half a step
    idx = np.random.default_rng(0).integers(0, 40, (2, 9))
    np.testing.assert_allclose(wte(idx).data, wte.dequantized_weight()[idx], rtol=1e-6)
    ref, got = gpt(idx)[0].data, q(idx)[0].data
    assert np.abs(got - ref).max() < 0.2 * np.abs(ref).max()
    save_quantized(q, str(tmp_path / "q4"))
    stored = load_file(str(tmp_path / "q4" / "model.safetensors"))
    assert "transformer.wte.weight_int4" in stored and "lm_head.weight_int4" not in stored
    assert not any(k.startswith("lm_head.weight") for k in stored)
    back = load_quantized(GPT, str(tmp_path / "q4"))
    assert back.lm_head.weight_int4 is back.transformer["wte"].weight_int4
    np.testing.assert_array_equal(back(idx)[0].data, got)
    with pytest.raises(ValueError, match="even divisor of embedding_dim 32"):
        QuantizedEmbedding(40, 32, bits=4, group_size=12)


@pytest.mark.skipif(
    __import__("numtrans.models.sentence_encoder", fromlist=["x"]).installed_minilm() is None,
    reason="all-MiniLM-L6-v2 is not installed",
)
def test_minilm_int8_is_3_5x_smaller(tmp_path):
    from numtrans.models.sentence_encoder import SentenceEncoder, installed_minilm

    enc = SentenceEncoder.from_pretrained(installed_minilm())
    save_quantized(quantize(enc.model), str(tmp_path / "q"))
    enc.model.save_pretrained(str(tmp_path / "f"))
    sizes = [os.path.getsize(tmp_path / d / "model.safetensors") for d in "fq"]
    assert sizes[0] / sizes[1] >= 3.5


def test_quantize_options_and_errors():
    model = tiny_bert()
    q = quantize(model, skip=("encoder.layer.0.*",))
    assert not any(isinstance(m, QuantizedLinear) for m in q.encoder.layer[0].modules())
    q4 = quantize(model, bits=4, group_size=16)
    lin = next(m for m in q4.modules() if isinstance(m, QuantizedLinear))
    w = model.encoder.layer[0].attention.self.query.weight.data
    assert np.abs(lin.dequantized_weight() - w).max() <= np.abs(w).max() / 7
    with pytest.raises(ValueError, match="already quantized"):
        quantize(q)
    with pytest.raises(ValueError, match="does not divide"):
        quantize(model, bits=4, group_size=24)
    with pytest.raises(ValueError, match="no Linear"):
        quantize(nt.nn.LayerNorm(4))


def test_quantized_linear_matches_float():
    nt.manual_seed(1)
    lin = Linear(24, 10)
    x = np.random.default_rng(2).normal(size=(3, 5, 24)).astype(np.float32)
    x[0, 0] = 0  # a zero row must give exactly the bias
    q = QuantizedLinear.from_linear(lin)
    out = q(nt.Tensor(x)).data
    ref = lin(nt.Tensor(x)).data
    assert out.shape == (3, 5, 10)
    np.testing.assert_allclose(out[0, 0], lin.bias.data, rtol=1e-6)
    assert np.abs(out - ref).max() < 0.05 * np.abs(ref).max()


def test_weight_packed_once(tmp_path, monkeypatch):
    """The int8 weight is packed when quantized or loaded, never in forward."""
    import numtrans.compress.int8 as int8_mod

    q = quantize(tiny_bert())
    layer = q.encoder.layer[0].attention.self.query
    assert layer.packed is not None
    np.testing.assert_array_equal(layer.packed.unpack(), layer.weight_int8.T)
    save_quantized(q, str(tmp_path / "q"))
    back = load_quantized(BertModel, str(tmp_path / "q"))
    assert all(m.packed is not None for m in back.modules() if isinstance(m, QuantizedLinear))

    def no_packing(b):
        raise AssertionError("forward repacked a weight")

    monkeypatch.setattr(int8_mod._native or int8_mod, "int8_pack_b", no_packing, raising=False)
    ids = np.random.default_rng(3).integers(1, 50, (2, 5))
    np.testing.assert_array_equal(hidden(back, ids), hidden(q, ids))


def test_student_from_every_other_layer():
    from numtrans.compress.student import kept_layers, student_from_teacher
    from numtrans.models.bert_heads import BertForSequenceClassification
    from numtrans.recipes.distill import DistillConfig

    assert kept_layers(6, 3) == [0, 2, 4] and kept_layers(6, 2) == [0, 3]
    assert kept_layers(4, 4) == [0, 1, 2, 3]
    nt.manual_seed(0)
    cfg = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, num_labels=3)  # fmt: skip
    teacher = BertForSequenceClassification(cfg).eval()
    student = student_from_teacher(teacher, 2)
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    assert len(student.bert.encoder.layer) == 2
    for s, t in zip(student.bert.encoder.layer, [teacher.bert.encoder.layer[i] for i in (0, 2)]):
        for (name, a), (_, b) in zip(s.state_dict().items(), t.state_dict().items()):
            np.testing.assert_array_equal(a, b, err_msg=name)
    student.bert.encoder.layer[0].output.dense.weight.data[:] = 0  # a copy, not the teacher's
    assert np.abs(teacher.bert.encoder.layer[0].output.dense.weight.data).max() > 0
    ids = np.array([[2, 5, 6, 3]])
    full = student_from_teacher(teacher, 4)
    np.testing.assert_array_equal(full(ids).logits.data, teacher(ids).logits.data)
    with pytest.raises(ValueError, match="1 to 4 layers"):
        student_from_teacher(teacher, 5)
    with pytest.raises(ValueError, match="alpha"):
        DistillConfig(alpha=1.5)
