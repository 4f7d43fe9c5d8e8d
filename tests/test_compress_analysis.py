"""Per-layer quantization error analysis: it finds a layer made sensitive on purpose, and
keeping that layer in float32 (``skip=``) lowers the whole model's error."""

from __future__ import annotations

import numpy as np
import pytest

import numtrans as nt
from numtrans.compress import format_errors, most_sensitive, quantization_errors, quantize
from numtrans.models.bert import BertConfig, BertModel

OUTLIER_LAYER = "encoder.layer.1.attention.output.dense"


def model_with_outlier():
    nt.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
    )
    model = BertModel(cfg).eval()
    # An outlier feature, as LLM.int8 found in large models: feature 0 of the attention values
    # made 300x larger and the output projection's column 0 300x smaller. Attention is linear in
    # the values, so the float model computes the same function; but now one input feature
    # sets every token's scale of the output projection, and the other features round to few
    # levels.
    attn = model.encoder.layer[1].attention
    attn.self.value.weight.data[0] *= 300
    attn.self.value.bias.data[0] *= 300
    attn.output.dense.weight.data[:, 0] /= 300
    return model


def last_hidden(m, ids):
    return m(ids).last_hidden_state


def test_finds_the_sensitive_layer_and_skip_helps():
    model = model_with_outlier()
    ids = np.random.default_rng(0).integers(1, 50, (3, 8))
    errors = quantization_errors(model, lambda m: last_hidden(m, ids))
    assert len(errors) == 13 + 3  # 6 Linear per layer, the pooler, 3 embedding tables
    by_name = {e.name: e for e in errors}
    bad = by_name[OUTLIER_LAYER]
    others = [e for e in errors if e.name != OUTLIER_LAYER]
    assert bad.outlier > 5 * max(e.outlier for e in others if e.kind == "linear")
    assert bad.output_error > 3 * max(e.output_error for e in others)
    linears = [e for e in errors if e.kind == "linear"]
    assert most_sensitive(linears, 1) == [OUTLIER_LAYER]
    assert most_sensitive(errors, 1, by="output_error") == [OUTLIER_LAYER]
    assert all(0 <= e.model_error < 1 and e.output_error >= 0 for e in errors)
    assert all(e.outlier >= 1 for e in linears)
    table = format_errors(linears, top=3)
    assert table.splitlines()[1].startswith(OUTLIER_LAYER) and len(table.splitlines()) == 4

    ref = last_hidden(model, ids).data

    def err(m):
        return np.linalg.norm(last_hidden(m, ids).data - ref) / np.linalg.norm(ref)

    full = err(quantize(model, embeddings=False))
    kept = err(quantize(model, embeddings=False, skip=most_sensitive(linears, 1)))
    assert kept < full / 5


def test_the_model_is_not_changed_and_errors():
    model = model_with_outlier()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    ids = np.arange(1, 7)[None, :]
    quantization_errors(model, lambda m: last_hidden(m, ids), embeddings=False)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(ValueError, match="no Linear or Embedding"):
        quantization_errors(nt.nn.LayerNorm(4), lambda m: m(nt.Tensor(np.ones((1, 4)))))
