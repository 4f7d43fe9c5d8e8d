"""nn.MultiheadAttention: PyTorch parity (outputs, weights, gradients), masks, gradcheck, cache."""

import numpy as np
import pytest

import numtrans as nt
from numtrans import nn


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")  # compare the reference path exactly


def load_from_torch(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


CASES = {
    "self": {},
    "self_seq_first": {"batch_first": False},
    "padding_bool": {"key_padding_mask": "bool"},
    "attn_mask_bool": {"attn_mask": "bool"},
    "attn_mask_float_and_padding": {"attn_mask": "float", "key_padding_mask": "float"},
    "causal_hint": {"attn_mask": "causal", "is_causal": True},
    "per_head_mask_3d": {"attn_mask": "3d"},
    "cross_kdim_vdim": {"cross": True, "kdim": 5, "vdim": 3},
    "cross_same_dims": {"cross": True},
    "no_bias": {"bias": False},
    "per_head_weights": {"average": False},
}


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, need_weights):
    torch = pytest.importorskip("torch")
    c = CASES[case]
    E, H, B, L, S = 8, 2, 2, 4, 5
    batch_first = c.get("batch_first", True)
    kdim, vdim = c.get("kdim"), c.get("vdim")
    kw = {"bias": c.get("bias", True), "kdim": kdim, "vdim": vdim, "batch_first": batch_first}
    tm = torch.nn.MultiheadAttention(E, H, dtype=torch.float64, **kw)
    m = nn.MultiheadAttention(E, H, dtype=np.float64, **kw)
    load_from_torch(m, tm)
    rng = np.random.default_rng(0)
    cross = c.get("cross", False)
    S = S if cross else L

    def layout(b, t, d):
        return (b, t, d) if batch_first else (t, b, d)

    q = rng.standard_normal(layout(B, L, E))
    k = rng.standard_normal(layout(B, S, kdim or E)) if cross else q
    v = rng.standard_normal(layout(B, S, vdim or E)) if cross else q
    kwargs = {"need_weights": need_weights, "average_attn_weights": c.get("average", True)}
    if c.get("key_padding_mask") == "bool":
        kpm = np.zeros((B, S), dtype=bool)
        kpm[1, -2:] = True
        kwargs["key_padding_mask"] = kpm
    elif c.get("key_padding_mask") == "float":
        kpm = np.zeros((B, S))
        kpm[1, -2:] = -np.inf
        kwargs["key_padding_mask"] = kpm
    mask_kind = c.get("attn_mask")
    if mask_kind == "bool":
        mask = rng.random((L, S)) > 0.7
        mask[:, 0] = False  # no fully blocked row: PyTorch returns NaN there, we return zeros
        kwargs["attn_mask"] = mask
    elif mask_kind == "float":
        kwargs["attn_mask"] = rng.standard_normal((L, S))
    elif mask_kind == "causal":
        kwargs["attn_mask"] = np.triu(np.ones((L, S), dtype=bool), 1)
        kwargs["is_causal"] = True
    elif mask_kind == "3d":
        mask = rng.random((B * H, L, S)) > 0.7
        mask[..., 0] = False
        kwargs["attn_mask"] = mask

    ours = [nt.Tensor(a, requires_grad=True) for a in (q, k, v)]
    if not cross:
        ours = [ours[0]] * 3  # the same tensor: self-attention takes the fused path
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    if not cross:
        theirs = [theirs[0]] * 3
    out, w = m(*ours, **kwargs)
    tkw = {
        key: torch.tensor(val) if isinstance(val, np.ndarray) else val
        for key, val in kwargs.items()
    }
    tout, tw = tm(*theirs, **tkw)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    if need_weights:
        np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-10, atol=1e-12)
    else:
        assert w is None and tw is None
    g = rng.standard_normal(out.shape)
    out.backward(g)
    tout.backward(torch.tensor(g))
    for a, b in zip(ours[:1] if not cross else ours, theirs[:1] if not cross else theirs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-9, atol=1e-11)
    tparams = dict(tm.named_parameters())
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=1e-9, atol=1e-11)


def test_parameter_names_and_shapes_mirror_torch():
    m = nn.MultiheadAttention(8, 2)
    shapes = {k: v.shape for k, v in m.state_dict().items()}
    assert shapes == {
        "in_proj_weight": (24, 8),
        "in_proj_bias": (24,),
        "out_proj.weight": (8, 8),
        "out_proj.bias": (8,),
    }
    m2 = nn.MultiheadAttention(8, 2, kdim=5, vdim=3, bias=False)
    assert list(m2.state_dict()) == [
        "q_proj_weight",
        "k_proj_weight",
        "v_proj_weight",
        "out_proj.weight",
    ]
    assert np.all(m.in_proj_bias.data == 0) and np.all(m.out_proj.bias.data == 0)
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(7, 2)


def test_fully_masked_query_gives_zeros_not_nan():
    m = nn.MultiheadAttention(4, 2, batch_first=True, dtype=np.float64)
    x = nt.Tensor(np.random.default_rng(0).standard_normal((1, 3, 4)), requires_grad=True)
    kpm = np.ones((1, 3), dtype=bool)  # every key is padding
    out, w = m(x, x, x, key_padding_mask=kpm)
    out.sum().backward()
    assert np.isfinite(out.data).all() and np.all(w.data == 0) and np.isfinite(x.grad).all()


def test_unbatched_input():
    m = nn.MultiheadAttention(4, 2, dtype=np.float64)
    x = nt.Tensor(np.random.default_rng(0).standard_normal((3, 4)))
    out, w = m(x, x, x, average_attn_weights=False)
    assert out.shape == (3, 4) and w.shape == (2, 3, 3)
    batched, _ = m(x.unsqueeze(1), x.unsqueeze(1), x.unsqueeze(1))
    np.testing.assert_allclose(out.data, batched.data[:, 0], atol=1e-12)


def test_is_causal_without_mask_builds_it():
    m = nn.MultiheadAttention(4, 2, batch_first=True, dtype=np.float64)
    x = nt.Tensor(np.random.default_rng(0).standard_normal((2, 5, 4)))
    a, wa = m(x, x, x, is_causal=True)
    b, wb = m(x, x, x, attn_mask=np.triu(np.ones((5, 5), dtype=bool), 1))
    np.testing.assert_allclose(a.data, b.data, atol=1e-12)
    assert np.all(np.triu(wa.data[0], 1) == 0)


def test_gradcheck_direction_with_masks():
    nt.manual_seed(0)
    m = nn.MultiheadAttention(6, 3, batch_first=True, dtype=np.float64)
    x = nt.Tensor(np.random.default_rng(1).standard_normal((2, 4, 6)), requires_grad=True)
    mem = nt.Tensor(np.random.default_rng(2).standard_normal((2, 3, 6)), requires_grad=True)
    kpm = np.array([[False, False, True], [False, False, False]])

    def fn(x, mem, *params):
        return m(x, mem, mem, key_padding_mask=kpm)[0]

    assert nt.gradcheck_direction(fn, [x, mem, *m.parameters()], n_directions=3)
    assert nt.gradcheck(lambda x: m(x, x, x, is_causal=True)[0], [x])


def test_kv_cache_incremental_self_attention_equals_full():
    m = nn.MultiheadAttention(8, 2, batch_first=True, dtype=np.float64).eval()
    x = nt.Tensor(np.random.default_rng(0).standard_normal((2, 6, 8)))
    full, _ = m(x, x, x, is_causal=True, need_weights=False)
    cache = nn.AttentionCache()
    with nt.no_grad():
        parts = [m(x[:, :3], x[:, :3], x[:, :3], is_causal=True, kv_cache=cache)[0]]
        for t in range(3, 6):
            step = x[:, t : t + 1]
            parts.append(m(step, step, step, is_causal=True, kv_cache=cache)[0])
    inc = np.concatenate([p.data for p in parts], axis=1)
    np.testing.assert_allclose(inc, full.data, rtol=1e-12, atol=1e-12)
    assert cache.length == 6


def test_torch_state_dict_loads_without_conversion():
    torch = pytest.importorskip("torch")
    tm = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64)
    m = nn.MultiheadAttention(8, 2, batch_first=True, dtype=np.float64)
    m.load_state_dict(tm.state_dict())  # torch tensors straight in: np.asarray takes them
    np.testing.assert_array_equal(m.in_proj_weight.data, tm.in_proj_weight.detach().numpy())


def test_strided_heads_are_made_contiguous_for_blas():
    from numtrans.functional.attention import contiguous

    x = nt.Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    view = x.transpose(1, 2)
    c = contiguous(view)
    assert c.data.flags.c_contiguous and np.array_equal(c.data, view.data)
    assert contiguous(c) is c
    (c * nt.Tensor(np.ones((2, 4, 3)) * 2)).sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3, 4), 2.0))
