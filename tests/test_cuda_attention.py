"""The CUDA fused attention (numtrans._cuda) against the float64 oracle, and its error paths.

On a machine with a GPU, the CPU kernel's property tests (tests/test_native_attention.py:
shapes around the tile edges, masks with empty rows, causal, large logits, float64 to ~1e-12,
float32 under FlashAttention's rule: at most 2x (outputs) / 3x (gradients) the error of the
same oracle in float32, plus a floor) run on backend="cuda" in both backward modes (dq by
atomicAdd, and the deterministic dq kernel), and the device-array path of numtrans.native.cuda
runs on torch CUDA tensors (and CuPy arrays, when installed). Without a GPU those tests skip,
saying why; the tests at the end check, on any machine, that a missing GPU is reported clearly.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_native_attention import check_close, expected, problems

import numtrans as nt
from numtrans import backends
from numtrans.native import attention_backward, attention_forward
from numtrans.native import cuda as native_cuda

HAS_GPU = backends.is_available("cuda")
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason=f"cuda backend: {backends.reason('cuda')}")
no_gpu = pytest.mark.skipif(HAS_GPU, reason="a GPU is present")


def cuda_module():
    """numtrans._cuda if it was built (whether or not a GPU is present), else skip."""
    return pytest.importorskip("numtrans._cuda", reason="the CUDA module was not built")


def torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    return torch


def run_cuda(p, deterministic=False):
    """(out, lse, dq, dk, dv) of a problem from test_native_attention.problems on the GPU."""
    dt = p["dtype"]
    q, k, v, dout = (p[n].astype(dt) for n in ("q", "k", "v", "dout"))
    kw = dict(attn_mask=p["mask"], is_causal=p["causal"], scale=p["scale"], backend="cuda")
    out, lse = attention_forward(q, k, v, **kw)
    assert out.dtype == dt and lse.dtype == dt
    grads = attention_backward(dout, q, k, v, out, lse, deterministic=deterministic, **kw)
    return (out, lse, *grads)


def qkv(B=2, H=3, N=5, M=7, D=8, Dv=None, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(B, H, N, D), (B, H, M, D), (B, H, M, Dv or D)]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


# ------------------------------------------------------------ NumPy arrays, backend="cuda"
@needs_gpu
@pytest.mark.parametrize("mode", ["atomic", "deterministic"])
@given(p=problems())
def test_matches_oracle(mode, p):
    got = run_cuda(p, deterministic=mode == "deterministic")
    check_close(got, *expected(p), p["dtype"])
    for x in got:
        assert not np.isnan(x).any()


@needs_gpu
@given(p=problems())
def test_fully_masked_rows_give_exact_zeros(p):
    p["causal"] = False
    N, M = p["q"].shape[2], p["k"].shape[2]
    mask = np.ones((N, M), bool)
    mask[::3] = False  # every third query sees nothing
    p["mask"] = mask
    out, lse, dq, dk, dv = run_cuda(p)
    assert np.all(out[:, :, ::3] == 0) and np.all(dq[:, :, ::3] == 0)
    assert np.all(np.isneginf(lse[:, :, ::3]))
    if N < 2:  # no query sees anything: k and v get no gradient
        assert np.all(dk == 0) and np.all(dv == 0)
    check_close((out, lse, dq, dk, dv), *expected(p), p["dtype"])


@needs_gpu
@given(p=problems(masks=False))
def test_single_key_returns_its_value(p):
    """M = 1: softmax over one key is 1, so every output row is that key's value."""
    p["k"], p["v"] = p["k"][:, :, :1], p["v"][:, :, :1]
    out, _, dq, *_ = run_cuda(p)
    np.testing.assert_array_equal(out, np.broadcast_to(p["v"].astype(p["dtype"]), out.shape))
    # The weights cannot move (P = 1 whatever q is), so dq is 0 up to rounding in dP - D.
    tol = 1e-12 if p["dtype"] == np.float64 else 1e-5
    assert np.abs(dq).max() <= tol * max(1.0, np.abs(p["k"]).max() * np.abs(p["dout"]).max())


@needs_gpu
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deterministic_mode_is_bitwise_repeatable(causal, dtype):
    """Many key tiles add to the same dq rows: the deterministic kernel sums them in one order."""
    q, k, v = qkv(B=2, H=2, N=700, M=650, D=64, dtype=dtype, seed=5)
    dout = np.random.default_rng(6).standard_normal((2, 2, 700, 64)).astype(dtype)
    kw = dict(is_causal=causal, backend="cuda")
    runs = []
    for _ in range(3):
        out, lse = attention_forward(q, k, v, **kw)
        runs.append(
            (out, lse, *attention_backward(dout, q, k, v, out, lse, deterministic=True, **kw))
        )
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            np.testing.assert_array_equal(a, b)
    out, lse = runs[0][:2]
    atomic = attention_backward(dout, q, k, v, out, lse, **kw)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for a, b in zip(runs[0][2:], atomic):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(a).max())


@needs_gpu
@pytest.mark.parametrize("mode", ["atomic", "deterministic"])
def test_nan_propagates_instead_of_being_masked(mode):
    q, k, v = qkv(1, 1, 6, 9, 8)
    q[0, 0, 2, 3] = np.nan  # one query row
    k[0, 0, 4, 1] = np.nan  # one key: every query sees it
    out, lse = attention_forward(q, k, v, backend="cuda")
    assert np.isnan(out).all() and np.isnan(lse).all()
    q, k, v = qkv(1, 1, 6, 9, 8)
    q[0, 0, 2, 3] = np.nan
    out, lse = attention_forward(q, k, v, backend="cuda")
    assert np.isnan(out[0, 0, 2]).all() and not np.isnan(np.delete(out, 2, axis=2)).any()
    dq, dk, dv = attention_backward(
        np.ones_like(out), q, k, v, out, lse, backend="cuda", deterministic=mode == "deterministic"
    )
    assert not np.isnan(np.delete(dq, 2, axis=2)).any()


@needs_gpu
@pytest.mark.parametrize("shape", [(0, 2, 3, 4, 5), (2, 2, 0, 4, 5), (1, 2, 3, 0, 5)])
@pytest.mark.parametrize("mode", ["atomic", "deterministic"])
def test_empty_dimensions(shape, mode):
    B, H, N, M, D = shape
    q, k, v = qkv(B, H, N, M, D)
    out, lse = attention_forward(q, k, v, backend="cuda")
    assert out.shape == (B, H, N, D) and lse.shape == (B, H, N)
    assert np.all(out == 0) and np.all(np.isneginf(lse))  # M = 0: no keys at all
    grads = attention_backward(
        np.ones_like(out), q, k, v, out, lse, backend="cuda", deterministic=mode == "deterministic"
    )
    for g, x in zip(grads, (q, k, v)):
        assert g.shape == x.shape and not g.any()


@needs_gpu
def test_head_dims_up_to_256_and_no_more():
    q, k, v = qkv(1, 2, 9, 11, 256, Dv=200)
    out, lse = attention_forward(q, k, v, backend="cuda")
    ref, _ = attention_forward(q, k, v, backend="numpy")
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    q, k, v = qkv(1, 1, 3, 4, 257)
    with pytest.raises(ValueError, match="up to 256"):
        attention_forward(q, k, v, backend="cuda")


@needs_gpu
def test_unknown_variants_are_refused():
    q, k, v = qkv()
    out, lse = attention_forward(q, k, v, backend="cuda")
    with pytest.raises(ValueError, match="unknown cuda kernel variant"):
        attention_backward(out, q, k, v, out, lse, backend="cuda", isa="sse9")
    with pytest.raises(ValueError, match="no scalar reference kernel"):
        attention_forward(q, k, v, backend="cuda", kernel="reference")


@needs_gpu
def test_sdpa_runs_on_the_gpu(monkeypatch):
    from numtrans.functional.attention import scaled_dot_product_attention as sdpa

    monkeypatch.delenv("NUMTRANS_BACKEND", raising=False)
    q, k, v = (nt.Tensor(x, requires_grad=True) for x in qkv(2, 2, 33, 70, 16))
    grads = {}
    for backend in ("numpy", "cuda"):
        for t in (q, k, v):
            t.grad = None
        out = sdpa(q, k, v, is_causal=True, backend=backend)
        out.sum().backward()
        grads[backend] = (out.data, q.grad, k.grad, v.grad)
    for a, b in zip(grads["numpy"], grads["cuda"]):
        np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-11)


# ------------------------------------------------------ device arrays: numtrans.native.cuda
LAYOUTS = ["contiguous", "transposed", "strided", "offset"]


def to_torch(torch, x, how):
    """x as a torch CUDA tensor in a given memory layout (the values are the same)."""
    t = torch.tensor(x, device="cuda")
    if how == "transposed":  # (B, N, H, D) memory seen as (B, H, N, D), like split heads
        return t.transpose(1, 2).contiguous().transpose(1, 2)
    if how == "strided":  # every other element of a bigger tensor: 4-byte loads
        big = torch.zeros(x.shape[:-1] + (2 * x.shape[-1],), dtype=t.dtype, device="cuda")
        big[..., ::2] = t
        return big[..., ::2]
    if how == "offset":  # rows that start off a 16-byte boundary: 4-byte loads
        B, H, R, C = x.shape
        big = torch.zeros((B, H, R + 1, C + 3), dtype=t.dtype, device="cuda")
        big[:, :, 1:, 1 : C + 1] = t
        return big[:, :, 1:, 1 : C + 1]
    return t


@needs_gpu
@given(p=problems(), how=st.sampled_from(LAYOUTS), deterministic=st.booleans())
def test_device_arrays_match_the_numpy_path(p, how, deterministic):
    """Device tensors in any layout give the same bits as the NumPy path (which copies)."""
    torch = torch_cuda()
    dt = p["dtype"]
    arrays = {n: p[n].astype(dt) for n in ("q", "k", "v", "dout")}
    t = {n: to_torch(torch, x, how) for n, x in arrays.items()}
    mask = None if p["mask"] is None else torch.as_tensor(p["mask"], device="cuda")
    kw = dict(attn_mask=mask, is_causal=p["causal"], scale=p["scale"])
    out, lse = native_cuda.attention_forward(t["q"], t["k"], t["v"], **kw)
    grads = native_cuda.attention_backward(
        t["dout"], t["q"], t["k"], t["v"], out, lse, deterministic=deterministic, **kw
    )
    got = [x.cpu().numpy() for x in (out, lse, *grads)]
    ref = run_cuda(p, deterministic=deterministic)
    for i, (a, b) in enumerate(zip(got, ref)):
        if i == 2 and not deterministic:  # dq by atomics: the order of the additions varies
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * max(1, np.abs(b).max()))
        else:
            np.testing.assert_array_equal(a, b)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["none", "causal", "padding", "additive"])
def test_device_arrays_match_torch_sdpa(dtype, mode):
    torch = torch_cuda()
    F = torch.nn.functional
    dt = getattr(torch, dtype)
    g = torch.Generator(device="cuda").manual_seed(0)
    B, H, N, M, D = 2, 3, 200, 300, 64
    if mode == "causal":
        M = N
    q, k, v, dout = (
        torch.randn(s, device="cuda", dtype=dt, generator=g)
        for s in ((B, H, N, D), (B, H, M, D), (B, H, M, D), (B, H, N, D))
    )
    mask = None
    if mode == "padding":  # (B, 1, 1, M) key padding; every row keeps at least one key
        mask = torch.arange(M, device="cuda")[None, :] < torch.tensor(
            [[M], [M // 3]], device="cuda"
        )
        mask = mask[:, None, None, :]
    elif mode == "additive":
        mask = torch.randn((N, M), device="cuda", dtype=dt, generator=g)
    causal = mode == "causal"
    out, lse = native_cuda.attention_forward(q, k, v, attn_mask=mask, is_causal=causal)
    dq, dk, dv = native_cuda.attention_backward(dout, q, k, v, out, lse, mask, causal)
    assert isinstance(out, torch.Tensor) and out.device == q.device and out.is_contiguous()
    ref = [x.clone().requires_grad_(True) for x in (q, k, v)]
    with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
        tout = F.scaled_dot_product_attention(*ref, attn_mask=mask, is_causal=causal)
    tout.backward(dout)
    tol = 1e-11 if dtype == "float64" else 2e-4
    for a, b in zip((out, dq, dk, dv), (tout, *(x.grad for x in ref))):
        torch.testing.assert_close(a, b.detach(), rtol=tol, atol=tol)


@needs_gpu
def test_device_arrays_from_cupy():
    cupy = pytest.importorskip("cupy")
    q, k, v = qkv(2, 2, 40, 50, 32, dtype=np.float32)
    out, lse = native_cuda.attention_forward(*(cupy.asarray(x) for x in (q, k, v)), is_causal=True)
    assert isinstance(out, cupy.ndarray)
    ref_out, ref_lse = attention_forward(q, k, v, is_causal=True, backend="cuda")
    np.testing.assert_array_equal(cupy.asnumpy(out), ref_out)
    np.testing.assert_array_equal(cupy.asnumpy(lse), ref_lse)


@needs_gpu
def test_device_arrays_on_another_stream():
    torch = torch_cuda()
    q, k, v = (torch.tensor(x, device="cuda") for x in qkv(1, 2, 300, 300, 64))
    ref, _ = native_cuda.attention_forward(q, k, v)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out, _ = native_cuda.attention_forward(q, k, v)
        out = out * 1  # queued after the kernel on the same stream
    torch.cuda.current_stream().wait_stream(stream)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


# ------------------------------------------------------- no GPU: clear errors, no crashes
@no_gpu
def test_without_a_gpu_the_module_loads_and_says_why():
    module = cuda_module()
    assert module.device_count() == 0
    assert "cuda" not in backends.available()
    assert "no GPU" in backends.reason("cuda")


@no_gpu
def test_without_a_gpu_the_cuda_backend_raises_a_clear_error():
    from numtrans.functional.attention import scaled_dot_product_attention as sdpa

    q, k, v = (nt.Tensor(x) for x in qkv())
    with pytest.raises(RuntimeError, match="backend 'cuda' is not available"):
        sdpa(q, k, v, backend="cuda")
    with pytest.raises(RuntimeError, match="'cuda' is not available"):
        attention_forward(*qkv(), backend="cuda")
    with pytest.raises(RuntimeError, match="'cuda' is not available"):
        native_cuda.attention_forward(*qkv())


@no_gpu
def test_without_a_gpu_kernel_calls_name_the_failing_cuda_call():
    module = cuda_module()
    q, k, v = qkv()
    with pytest.raises(RuntimeError, match=r"cudaMalloc\(q\) failed: cuda"):
        module.attention_forward(q, k, v, None, False, 0.5)
    out = np.zeros((2, 3, 5, 8))
    lse = np.zeros((2, 3, 5))
    with pytest.raises(RuntimeError, match=r"cudaMalloc\(q\) failed: cuda"):
        module.attention_backward(out, q, k, v, out, lse, None, True, 0.5, "deterministic")


def test_numpy_arrays_are_not_device_arrays():
    with pytest.raises(TypeError, match="must be a GPU array"):
        native_cuda._cuda_array(np.zeros((1, 1, 2, 2)), "q")


def test_the_bindings_take_the_cpu_modules_arguments():
    """numtrans.native.attention calls either module the same way."""
    module = cuda_module()
    cpu = pytest.importorskip("numtrans._cpu")

    def params(f):
        return f.__doc__.split("(", 1)[1].split(")", 1)[0].replace("numpy.", "")

    for name in ("attention_forward", "attention_backward"):
        assert params(getattr(module, name)) == params(getattr(cpu, name))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tile_table(dtype):
    """The kernels' tile shapes (reported without a GPU) fit every supported GPU."""
    module = cuda_module()
    for head_dim in (0, 1, 32, 33, 64, 65, 100, 128, 129, 256):
        t = module.attention_tiles(dtype, head_dim)
        assert t["head_dim_padded"] >= max(head_dim, 1) and t["threads"] == 128
        for kernel in ("forward", "backward_kv", "backward_dq"):
            assert 0 < t[kernel]["smem_bytes"] <= 160 * 1024
            assert t[kernel]["queries"] % 16 == 0 and t[kernel]["keys"] % 16 == 0
    with pytest.raises(ValueError, match="head dim"):
        module.attention_tiles(dtype, 257)


# ------------------------------------------- argument marshalling, checked without a GPU
class _FakeDeviceArray:
    """Looks like a CUDA array to numtrans.native.cuda (only its interface dict is read)."""

    def __init__(self, shape, dtype=np.float32, ptr=4096):
        strides, step = [], np.dtype(dtype).itemsize
        for n in reversed(shape):
            strides.insert(0, step)
            step *= max(n, 1)
        self.__cuda_array_interface__ = {
            "shape": tuple(shape),
            "typestr": np.dtype(dtype).str,
            "data": (ptr, False),
            "strides": tuple(strides),
            "version": 3,
        }


def test_device_wrapper_passes_descriptors_in_the_kernels_order(monkeypatch):
    from numtrans.native import cuda as device

    calls = {}

    class FakeModule:
        def attention_forward_device(self, *args):
            calls["forward"] = args

    monkeypatch.setattr(device, "_cuda_array", lambda x, name: x)
    monkeypatch.setattr(
        device, "_empty", lambda like, shape, dtype: _FakeDeviceArray(shape, dtype, 8192)
    )
    monkeypatch.setattr(device.backends, "get", lambda name: FakeModule())
    q = _FakeDeviceArray((2, 3, 5, 8), ptr=1000)
    k = _FakeDeviceArray((2, 3, 7, 8), ptr=2000)
    v = _FakeDeviceArray((2, 3, 7, 4), ptr=3000)
    device.attention_forward(q, k, v, is_causal=True)
    dtype, sizes, qd, kd, vd, mask, causal, scale, *_ = calls["forward"]
    assert dtype == "float32" and sizes == (2, 3, 5, 7, 8, 4)
    assert qd == (1000, (120, 40, 8, 1)) and kd == (2000, (168, 56, 8, 1))
    assert vd == (3000, (84, 28, 4, 1)) and mask is None and causal is True
    assert scale == pytest.approx(1 / np.sqrt(8))
    with pytest.raises(ValueError, match="same head dim D"):
        device.attention_forward(q, _FakeDeviceArray((2, 3, 7, 6)), v)
    with pytest.raises(TypeError, match="share one dtype"):
        device.attention_forward(q, _FakeDeviceArray((2, 3, 7, 8), np.float64), v)
