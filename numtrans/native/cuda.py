"""Fused attention on arrays that already live on the GPU, without copying them.

    from numtrans.native import cuda
    out, lse = cuda.attention_forward(q, k, v, attn_mask=None, is_causal=False, scale=None)
    dq, dk, dv = cuda.attention_backward(grad_out, q, k, v, out, lse, attn_mask=None,
                                         is_causal=False, scale=None, deterministic=False)

The contract is that of ``numtrans.native.attention`` (shapes (B, H, N, D), masks, ``lse``,
fully masked rows, top-left causal), but q, k, v are GPU arrays: torch CUDA tensors, CuPy
arrays, anything exposing ``__cuda_array_interface__``, or an object that speaks DLPack (a JAX
array, say: it is viewed through ``torch.from_dlpack`` or ``cupy.from_dlpack``, still without a
copy). The kernels read them in place through their strides (a (B, N, H, D) tensor seen as
(B, H, N, D) by ``transpose(1, 2)`` is fine), masks through zero strides after broadcasting.
Outputs are new, C-contiguous arrays of the inputs' library (torch in, torch out), on the
inputs' GPU.

The kernels are queued on the library's current stream (torch.cuda.current_stream(),
cupy.cuda.get_current_stream(); else the stream named by ``__cuda_array_interface__``, else the
default stream) or on ``stream=`` (a raw cudaStream_t as an int), and the functions return
before they finish, like the libraries' own GPU operations. This is the path for benchmarks and
for users of those libraries; numtrans' own Tensors hold NumPy arrays and reach the same kernels
through ``F.scaled_dot_product_attention(..., backend="cuda")``, which copies.

``grad`` is not tracked: these are the raw forward and backward (torch tensors that require
grad are read through ``detach()``).
"""

from __future__ import annotations

import importlib
from typing import NamedTuple

import numpy as np

from .. import backends
from . import _checks

__all__ = ["attention_backward", "attention_forward"]


# ------------------------------------------------------------------------- device arrays
def _library(x) -> str:
    return type(x).__module__.split(".")[0]


def _cuda_array(x, name: str):
    """``x`` as a torch CUDA tensor or an array with ``__cuda_array_interface__`` (no copy)."""
    lib = _library(x)
    if lib == "torch":
        if not x.is_cuda:
            raise TypeError(f"{name} is a torch tensor on {x.device}; expected a CUDA tensor")
        return x.detach()  # torch refuses the interface on tensors that require grad
    if hasattr(x, "__cuda_array_interface__"):
        if lib == "cupy":
            return x
        for other in ("cupy", "torch"):  # a library we cannot allocate with: view it
            try:
                module = importlib.import_module(other)
            except ImportError:
                continue
            return module.asarray(x) if other == "cupy" else module.as_tensor(x, device="cuda")
        return x
    if hasattr(x, "__dlpack__") and not isinstance(x, np.ndarray):
        for other in ("torch", "cupy"):
            try:
                module = importlib.import_module(other)
                y = module.from_dlpack(x)
            except Exception:  # library missing, or it cannot take this producer's device
                continue
            if other == "torch" and not y.is_cuda:
                break
            return y
    raise TypeError(
        f"{name} must be a GPU array (a torch CUDA tensor, a CuPy array, or an object with "
        f"__cuda_array_interface__ or DLPack on a CUDA device), got {type(x).__name__}; "
        "for NumPy arrays use numtrans.native.attention_forward(..., backend='cuda')"
    )


class Described(NamedTuple):
    """What the kernels need to read a CUDA array in place."""

    ptr: int  # device address of element [0, 0, 0, 0]
    shape: tuple
    strides: tuple  # in elements, 0 on size-1 dims
    dtype: np.dtype


def _describe(x, name: str) -> Described:
    """The pointer, shape, strides (in elements, 0 on size-1 dims) and dtype of a CUDA array."""
    if _library(x) == "torch":  # the same numbers as the interface, without building its dict
        try:
            dtype = np.dtype(str(x.dtype).removeprefix("torch."))
        except TypeError:  # bfloat16, ...: no NumPy dtype
            raise TypeError(f"{name} must be float32 or float64, got {x.dtype}") from None
        shape = tuple(x.shape)
        elems = tuple(0 if n == 1 else s for n, s in zip(shape, x.stride()))
        return Described(x.data_ptr(), shape, elems, dtype)
    cai = x.__cuda_array_interface__
    shape = tuple(int(n) for n in cai["shape"])
    dtype = np.dtype(cai["typestr"])
    ptr = int(cai["data"][0]) if cai.get("data") else 0
    strides = cai.get("strides")
    if strides is None:  # C-contiguous
        strides, step = [], dtype.itemsize
        for n in reversed(shape):
            strides.insert(0, step)
            step *= max(n, 1)
    if any(s % dtype.itemsize for s in strides):
        raise ValueError(f"{name}: strides {tuple(strides)} are not whole elements")
    elems = tuple(0 if n == 1 else int(s) // dtype.itemsize for n, s in zip(shape, strides))
    return Described(ptr, shape, elems, dtype)


def _empty(like, shape, dtype):
    """A new C-contiguous array of ``like``'s library, on its device."""
    if _library(like) == "torch":
        import torch

        return torch.empty(shape, dtype=getattr(torch, np.dtype(dtype).name), device=like.device)
    import cupy

    with cupy.cuda.Device(like.device.id):
        return cupy.empty(shape, dtype=dtype)


def _contiguous(x):
    if _library(x) == "torch":
        return x.contiguous()
    import cupy

    return cupy.ascontiguousarray(x)


def _stream(x, stream):
    """The stream to queue the kernels on, as an int (0: the default stream)."""
    if stream is not None:
        return int(stream)
    lib = _library(x)
    if lib == "torch":
        import torch

        return int(torch.cuda.current_stream(x.device).cuda_stream)
    if lib == "cupy":
        import cupy

        return int(cupy.cuda.get_current_stream().ptr)
    return int(x.__cuda_array_interface__.get("stream") or 0)


def _ptr(x):
    return _describe(x, "").ptr


# ---------------------------------------------------------------------------------- checks
def _check(q, k, v, attn_mask, is_causal, scale):
    """Validate like numtrans.native.attention (the same ``_checks``); return the arrays, their
    descriptors, the mask, the sizes (B, H, N, M, D, Dv) and the scale."""
    q, k, v = (_cuda_array(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v")))
    q_desc, k_desc, v_desc = _describe(q, "q"), _describe(k, "k"), _describe(v, "v")
    sizes = _checks.check_qkv(
        q_desc.shape, k_desc.shape, v_desc.shape, q_desc.dtype, k_desc.dtype, v_desc.dtype
    )
    B, H, N, M, D, _ = sizes
    scale = _checks.resolve_scale(scale, D)
    _checks.check_mask_args(attn_mask, is_causal)
    mask = None if attn_mask is None else _mask(attn_mask, q, (B, H, N, M), q_desc.dtype)
    return (q, k, v), (q_desc, k_desc, v_desc), mask, sizes, scale


def _mask(mask, q, full, dtype):
    """(kind, pointer, strides) of the mask broadcast to (B, H, N, M), on q's device."""
    if _library(q) == "torch":
        import torch

        m = mask.detach() if torch.is_tensor(mask) else torch.as_tensor(np.asarray(mask))
        m = m.to(q.device)
        if m.dtype != torch.bool:
            if not m.is_floating_point():
                raise TypeError(f"attn_mask must be boolean or floating, got {m.dtype}")
            m = m.to(q.dtype)
        broadcast = torch.broadcast_to
    else:
        import cupy

        with cupy.cuda.Device(q.device.id):
            m = cupy.asarray(mask)
        if m.dtype != bool:
            if not np.issubdtype(m.dtype, np.floating):
                raise TypeError(f"attn_mask must be boolean or floating, got {m.dtype}")
            m = m.astype(dtype, copy=False)
        broadcast = cupy.broadcast_to
    _checks.check_mask_rank(tuple(m.shape))
    try:
        m = broadcast(m, full)  # a view: broadcast dims get stride 0
    except (ValueError, RuntimeError):
        raise _checks.broadcast_error(tuple(m.shape), full) from None
    m_desc = _describe(m, "attn_mask")
    kind = "bool" if m_desc.dtype == np.dtype(bool) else "add"
    return m, (kind, m_desc.ptr, m_desc.strides)


# ------------------------------------------------------------------------------- the calls
def attention_forward(q, k, v, attn_mask=None, is_causal=False, scale=None, *, stream=None):
    """softmax(scale q k^T + mask) v on the GPU -> (out (B, H, N, Dv), lse (B, H, N))."""
    module = backends.get("cuda")  # raises, saying why, without a GPU
    (q, k, v), (q_desc, k_desc, v_desc), mask, sizes, scale = _check(
        q, k, v, attn_mask, is_causal, scale
    )
    B, H, N, _, _, Dv = sizes
    out = _empty(q, (B, H, N, Dv), q_desc.dtype)
    lse = _empty(q, (B, H, N), q_desc.dtype)
    module.attention_forward_device(
        q_desc.dtype.name,
        sizes,
        (q_desc.ptr, q_desc.strides),
        (k_desc.ptr, k_desc.strides),
        (v_desc.ptr, v_desc.strides),
        None if mask is None else mask[1],
        bool(is_causal),
        scale,
        _ptr(out),
        _ptr(lse),
        _stream(q, stream),
    )
    return out, lse


def attention_backward(
    grad_out,
    q,
    k,
    v,
    out,
    lse,
    attn_mask=None,
    is_causal=False,
    scale=None,
    *,
    deterministic=False,
    stream=None,
):
    """Gradients (dq, dk, dv) of sum(grad_out * out) on the GPU; ``out``, ``lse`` from the forward.

    ``deterministic=False`` adds the contributions to dq with atomics (fast; the last bits can
    differ from run to run); ``True`` computes dq in a separate kernel, bitwise repeatable.
    """
    module = backends.get("cuda")
    (q, k, v), (q_desc, k_desc, v_desc), mask, sizes, scale = _check(
        q, k, v, attn_mask, is_causal, scale
    )
    B, H, N, M, D, Dv = sizes
    dtype = q_desc.dtype
    g, o = _cuda_array(grad_out, "grad_out"), _cuda_array(out, "out")
    g_desc, out_desc = _describe(g, "grad_out"), _describe(o, "out")
    for name, d in (("grad_out", g_desc), ("out", out_desc)):
        if d.shape != (B, H, N, Dv):
            raise ValueError(f"{name} must have the output's shape {(B, H, N, Dv)}, got {d.shape}")
        if d.dtype != dtype:
            raise TypeError(f"{name} must have q's dtype {dtype}, got {d.dtype}")
    lse = _contiguous(_cuda_array(lse, "lse"))
    lse_desc = _describe(lse, "lse")
    if lse_desc.shape != (B, H, N) or lse_desc.dtype != dtype:
        raise ValueError(
            f"lse must have shape {(B, H, N)} and dtype {dtype}, "
            f"got {lse_desc.shape} {lse_desc.dtype}"
        )
    grads = [_empty(q, s, dtype) for s in ((B, H, N, D), (B, H, M, D), (B, H, M, Dv))]
    workspace = _empty(q, (module.attention_workspace_elems(B, H, N),), dtype)
    module.attention_backward_device(
        dtype.name,
        sizes,
        (g_desc.ptr, g_desc.strides),
        (q_desc.ptr, q_desc.strides),
        (k_desc.ptr, k_desc.strides),
        (v_desc.ptr, v_desc.strides),
        (out_desc.ptr, out_desc.strides),
        lse_desc.ptr,
        None if mask is None else mask[1],
        bool(is_causal),
        scale,
        *(_ptr(x) for x in grads),
        _ptr(workspace),
        bool(deterministic),
        _stream(q, stream),
    )
    # The kernels may still be running when the workspace (and a converted mask or lse) is
    # freed here: that is safe because torch's and CuPy's allocators hand freed memory out again
    # only to work queued after ours on the same stream (the current one, unless `stream=` names
    # another: then keep that stream's work ordered with the current stream yourself).
    return tuple(grads)
