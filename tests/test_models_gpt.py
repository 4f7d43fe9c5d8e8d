"""GPT: shapes, loss, causality, KV-cache decoding, weight tying, init, gradcheck."""

import math

import numpy as np
import pytest

import numtrans as nt
from numtrans import nn
from numtrans.functional import cross_entropy
from numtrans.models import GPT, GPTConfig


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")


def tiny(**kw):
    config = dict(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_embd=16)
    config.update(kw)
    nt.manual_seed(0)
    return GPT(GPTConfig(**config)).double().eval()


def ids(B=2, T=8, V=13, seed=0):
    return np.random.default_rng(seed).integers(0, V, (B, T))


def test_forward_shapes_and_loss():
    model = tiny()
    x, y = ids(), ids(seed=1)
    logits, loss = model(x, y)
    assert logits.shape == (2, 8, 13) and loss.shape == ()
    expected = cross_entropy(logits.reshape(16, 13), y.reshape(-1))
    assert loss.item() == pytest.approx(expected.item())
    assert abs(loss.item() - math.log(13)) < 0.3  # small init: close to uniform
    assert model(x)[1] is None
    y[0, :4] = -100
    assert np.isfinite(model(x, y)[1].item())
    with pytest.raises(ValueError, match="block_size"):
        model(ids(T=9))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(np.arange(4))


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_never_looks_ahead(pos):
    model = tiny(pos=pos)
    x = ids(B=1)
    base = model(x)[0].data
    for t in range(7):
        changed = x.copy()
        changed[0, t + 1] = (changed[0, t + 1] + 1) % 13
        out = model(changed)[0].data
        np.testing.assert_array_equal(out[0, : t + 1], base[0, : t + 1])
        assert not np.allclose(out[0, t + 1], base[0, t + 1])


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_kv_cache_decoding_equals_full_forward(pos):
    model = tiny(pos=pos)
    x = ids()
    full = model(x)[0].data
    cache = model.make_kv_cache()
    with nt.no_grad():
        chunks = [model(x[:, :3], kv_cache=cache)[0]]  # prefill
        chunks.append(model(x[:, 3:5], kv_cache=cache)[0])  # two new tokens at once
        for t in range(5, 8):
            chunks.append(model(x[:, t : t + 1], kv_cache=cache)[0])  # one token per step
    inc = np.concatenate([c.data for c in chunks], axis=1)
    np.testing.assert_allclose(inc, full, rtol=1e-12, atol=1e-12)
    assert cache.length == 8
    with pytest.raises(ValueError, match="block_size"):
        model(x[:, :1], kv_cache=cache)
    cache.reset()
    assert cache.length == 0


def test_kv_cache_reorder_selects_batch_rows():
    model = tiny()
    x = ids(B=3)
    cache = model.make_kv_cache()
    with nt.no_grad():
        model(x[:, :4], kv_cache=cache)
        cache.reorder([2, 2, 0])
        step = model(x[[2, 2, 0], 4:5], kv_cache=cache)[0].data
    full = model(x[[2, 2, 0], :5])[0].data
    np.testing.assert_allclose(step[:, 0], full[:, 4], atol=1e-12)


def test_block_is_a_pre_norm_encoder_layer_with_causal_mask():
    """Cross-check against nn.TransformerEncoderLayer (itself checked against PyTorch)."""
    model = tiny(n_layer=1)
    block = model.transformer["h"][0]
    layer = nn.TransformerEncoderLayer(
        16, 2, 64, dropout=0.0, activation="gelu", batch_first=True, norm_first=True,
        dtype=np.float64,
    )  # fmt: skip
    layer.load_state_dict({
        "self_attn.in_proj_weight": block.attn.c_attn.weight.data,
        "self_attn.in_proj_bias": block.attn.c_attn.bias.data,
        "self_attn.out_proj.weight": block.attn.c_proj.weight.data,
        "self_attn.out_proj.bias": block.attn.c_proj.bias.data,
        "linear1.weight": block.mlp.c_fc.weight.data, "linear1.bias": block.mlp.c_fc.bias.data,
        "linear2.weight": block.mlp.c_proj.weight.data, "linear2.bias": block.mlp.c_proj.bias.data,
        "norm1.weight": block.ln_1.weight.data, "norm1.bias": block.ln_1.bias.data,
        "norm2.weight": block.ln_2.weight.data, "norm2.bias": block.ln_2.bias.data,
    })  # fmt: skip
    x = nt.Tensor(np.random.default_rng(0).standard_normal((2, 5, 16)))
    np.testing.assert_allclose(block(x).data, layer(x, is_causal=True).data, atol=1e-12)


def test_weight_tying_and_counts():
    tied, untied = tiny(), tiny(tie_weights=False)
    assert tied.lm_head.weight is tied.transformer["wte"].weight
    assert untied.num_params() - tied.num_params() == 13 * 16
    sd = tied.state_dict()
    assert "lm_head.weight" in sd and "transformer.wte.weight" in sd
    assert tied.num_params(non_embedding=True) == tied.num_params() - 8 * 16
    assert untied.num_params(non_embedding=True) == untied.num_params() - 8 * 16 - 13 * 16
    assert tiny(pos="rope").num_params() == tied.num_params() - 8 * 16
    # no bias: 11 C fewer per block (3C + C + 4C + C in Linears, 2C in LayerNorms), C in ln_f
    assert tiny(bias=False).num_params() == tied.num_params() - 2 * 11 * 16 - 16


def test_init_follows_nanogpt():
    nt.manual_seed(0)
    model = GPT(GPTConfig(block_size=64, vocab_size=500, n_layer=4, n_head=4, n_embd=64))
    wte = model.transformer["wte"].weight.data
    assert abs(wte.std() - 0.02) < 0.002
    proj = model.transformer["h"][0].attn.c_proj.weight.data
    assert abs(proj.std() - 0.02 / math.sqrt(8)) < 0.001
    assert np.all(model.transformer["h"][0].attn.c_attn.bias.data == 0)
    assert np.all(model.transformer["ln_f"].weight.data == 1)
    assert model.lm_head.weight.dtype == np.float32


@pytest.mark.parametrize("kw", [{}, {"pos": "rope", "tie_weights": False, "bias": False}])
def test_gradcheck_direction_whole_model(kw):
    model = tiny(n_layer=1, block_size=5, **kw)
    x, y = ids(T=5), ids(T=5, seed=1)

    def loss(*params):
        return model(x, y)[1]

    assert nt.gradcheck_direction(loss, list(model.parameters()), n_directions=3)


def test_dropout_in_train_mode_only():
    model = tiny(dropout=0.3)
    x = ids()
    a = model(x)[0].data
    np.testing.assert_array_equal(a, model(x)[0].data)
    model.train()
    assert not np.allclose(a, model(x)[0].data)


def test_gelu_tanh_option_changes_outputs():
    x = ids()
    assert not np.allclose(tiny()(x)[0].data, tiny(gelu_approximate="tanh")(x)[0].data)
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="pos"):
        GPTConfig(pos="alibi")
