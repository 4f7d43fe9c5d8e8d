"""Transformer layers and stacks: PyTorch parity (both norm orders, padding and causal masks),
gradients, gradcheck, structure."""

import numpy as np
import pytest

import numtrans as nt
from numtrans import nn


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")


D, H, FF = 8, 2, 12


def load_from_torch(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def check_grads(ours_inputs, theirs_inputs, m, tm, rtol=1e-9, atol=1e-11):
    for a, b in zip(ours_inputs, theirs_inputs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(tm.named_parameters())
    names = [n for n, _ in m.named_parameters()]
    assert sorted(names) == sorted(tparams)
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=rtol, atol=atol)


def masks(B, S, T):
    pad_src = np.zeros((B, S), dtype=bool)
    pad_src[1, -2:] = True
    pad_tgt = np.zeros((B, T), dtype=bool)
    pad_tgt[0, -1] = True
    causal = np.triu(np.ones((T, T), dtype=bool), 1)  # PyTorch convention: True = blocked
    return pad_src, pad_tgt, causal


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch(norm_first, activation):
    torch = pytest.importorskip("torch")
    kw = {"dropout": 0.0, "activation": activation, "batch_first": True, "norm_first": norm_first}
    tm = torch.nn.TransformerEncoderLayer(D, H, FF, dtype=torch.float64, **kw)
    m = nn.TransformerEncoderLayer(D, H, FF, dtype=np.float64, **kw)
    load_from_torch(m, tm)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, D))
    pad, _, _ = masks(2, 5, 5)
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)
    ox = nt.Tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    out = m(ox, src_mask=causal, src_key_padding_mask=pad)
    tout = tm(tx, src_mask=torch.tensor(causal), src_key_padding_mask=torch.tensor(pad))
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    check_grads([ox], [tx], m, tm)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch = pytest.importorskip("torch")
    kw = {"dropout": 0.0, "batch_first": True, "norm_first": norm_first}
    tm = torch.nn.TransformerDecoderLayer(D, H, FF, dtype=torch.float64, **kw)
    m = nn.TransformerDecoderLayer(D, H, FF, dtype=np.float64, **kw)
    load_from_torch(m, tm)
    rng = np.random.default_rng(1)
    tgt, mem = rng.standard_normal((2, 4, D)), rng.standard_normal((2, 6, D))
    pad_src, pad_tgt, causal = masks(2, 6, 4)
    ours = [nt.Tensor(a, requires_grad=True) for a in (tgt, mem)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (tgt, mem)]
    out = m(*ours, tgt_mask=causal, tgt_key_padding_mask=pad_tgt, memory_key_padding_mask=pad_src)
    tout = tm(
        *theirs, tgt_mask=torch.tensor(causal), tgt_key_padding_mask=torch.tensor(pad_tgt),
        memory_key_padding_mask=torch.tensor(pad_src), tgt_is_causal=True,
    )  # fmt: skip
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    check_grads(ours, theirs, m, tm)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_matches_torch(norm_first, batch_first):
    torch = pytest.importorskip("torch")
    kw = {"dropout": 0.0, "batch_first": batch_first, "norm_first": norm_first}
    tm = torch.nn.Transformer(D, H, 2, 2, FF, dtype=torch.float64, **kw)
    m = nn.Transformer(D, H, 2, 2, FF, dtype=np.float64, **kw)
    load_from_torch(m, tm)
    rng = np.random.default_rng(2)
    B, S, T = 2, 5, 4
    src = rng.standard_normal((B, S, D) if batch_first else (S, B, D))
    tgt = rng.standard_normal((B, T, D) if batch_first else (T, B, D))
    pad_src, pad_tgt, causal = masks(B, S, T)
    ours = [nt.Tensor(a, requires_grad=True) for a in (src, tgt)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (src, tgt)]
    km = {"src_key_padding_mask": pad_src, "tgt_key_padding_mask": pad_tgt,
          "memory_key_padding_mask": pad_src, "tgt_mask": causal}  # fmt: skip
    out = m(*ours, **km)
    tout = tm(*theirs, **{k: torch.tensor(v) for k, v in km.items()})
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    check_grads(ours, theirs, m, tm)
    # the causal flag without a mask gives the same result
    again = m(*ours, **{**km, "tgt_mask": None}, tgt_is_causal=True)
    np.testing.assert_allclose(again.data, out.data, atol=1e-12)


def test_square_subsequent_mask_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Transformer.generate_square_subsequent_mask(4)
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(4).numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_stacks_deep_copy_layers_and_state_dict_names():
    layer = nn.TransformerEncoderLayer(D, H, FF, batch_first=True)
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(D))
    w0, w1 = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
    assert w0 is not w1 and np.array_equal(w0.data, w1.data)
    names = list(enc.state_dict())
    assert names[0] == "layers.0.self_attn.in_proj_weight" and names[-1] == "norm.bias"
    t = nn.Transformer(D, H, 1, 1, FF)
    assert "decoder.layers.0.multihead_attn.in_proj_weight" in t.state_dict()
    assert "encoder.norm.weight" in t.state_dict() and "decoder.norm.weight" in t.state_dict()


@pytest.mark.parametrize("norm_first", [False, True])
def test_gradcheck_direction_layers(norm_first):
    nt.manual_seed(0)
    kw = {"dropout": 0.0, "batch_first": True, "norm_first": norm_first, "dtype": np.float64}
    enc = nn.TransformerEncoderLayer(6, 2, 10, activation="gelu", **kw)
    dec = nn.TransformerDecoderLayer(6, 2, 10, **kw)
    rng = np.random.default_rng(0)
    x = nt.Tensor(rng.standard_normal((2, 3, 6)), requires_grad=True)
    y = nt.Tensor(rng.standard_normal((2, 4, 6)), requires_grad=True)
    pad = np.array([[False, False, True], [False, False, False]])

    def fn(x, y, *params):
        memory = enc(x, src_key_padding_mask=pad)
        return dec(y, memory, tgt_is_causal=True, memory_key_padding_mask=pad)

    params = [*enc.parameters(), *dec.parameters()]
    assert nt.gradcheck_direction(fn, [x, y, *params], n_directions=3)


def test_dropout_only_in_training():
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.5, batch_first=True, dtype=np.float64)
    x = nt.Tensor(np.random.default_rng(0).standard_normal((2, 3, D)))
    layer.eval()
    a, b = layer(x), layer(x)
    np.testing.assert_array_equal(a.data, b.data)
    layer.train()
    assert not np.allclose(layer(x).data, a.data)


def test_decoder_kv_cache_equals_full_pass():
    nt.manual_seed(0)
    kw = {"dropout": 0.0, "batch_first": True, "dtype": np.float64}
    dec = nn.TransformerDecoder(
        nn.TransformerDecoderLayer(D, H, FF, **kw), 2, nn.LayerNorm(D, dtype=np.float64)
    )
    rng = np.random.default_rng(0)
    tgt = nt.Tensor(rng.standard_normal((2, 5, D)))
    mem = nt.Tensor(rng.standard_normal((2, 3, D)))
    pad = np.array([[False, False, True], [False, False, False]])
    full = dec(tgt, mem, tgt_is_causal=True, memory_key_padding_mask=pad)
    cache = nn.KVCache(2, cross_attention=True)
    with nt.no_grad():
        steps = [
            dec(
                tgt[:, t : t + 1],
                mem,
                tgt_is_causal=True,
                memory_key_padding_mask=pad,
                kv_cache=cache,
            )
            for t in range(5)
        ]
    np.testing.assert_allclose(np.concatenate([s.data for s in steps], 1), full.data, atol=1e-12)
    assert cache.length == 5 and cache[0].cross_attn.length == 3
