"""Fused attention on NumPy arrays: input checks, then the native kernel (or the NumPy path).

    out, lse = attention_forward(q, k, v, attn_mask=None, is_causal=False, scale=None)
    dq, dk, dv = attention_backward(grad_out, q, k, v, out, lse, attn_mask, is_causal, scale)

Shapes: q (B, H, N, D), k (B, H, M, D), v (B, H, M, Dv) -> out (B, H, N, Dv), lse (B, H, N),
where ``lse[b, h, i] = log sum_j exp(s_ij)`` with ``s = scale * q k^T + mask`` (``-inf`` for a
query whose keys are all masked; its output row and gradients are zeros). ``scale`` defaults to
``1 / sqrt(D)``. Cross-attention (N != M) and decoding (N = 1) are fine.

Masks follow PyTorch's ``F.scaled_dot_product_attention``: a boolean mask is True where a query
may attend; a float mask is added to the scores (``-inf`` forbids). It broadcasts to
(B, H, N, M): (N, M), (B, 1, 1, M) key padding, (1, H, N, M), ... The kernel reads it through
zero strides, so a broadcast mask is never materialised. ``is_causal`` means query i sees keys
j <= i (top-left aligned, as in PyTorch); giving both it and ``attn_mask`` is an error.

Layout: float32 or float64 arrays of any strides (transposed, sliced, negative, read-only) are
read in place, without a copy. Only arrays NumPy itself calls unaligned, or whose strides are
not whole elements, are copied first.

Outputs: ``out=`` (forward) and ``dq=``, ``dk=``, ``dv=`` (backward) take arrays to write the
results into, in any layout whose rows are contiguous. ``empty_like_heads(x, shape)`` makes one
in the memory order of ``x``: when q is the transposed view of a (B, N, H, D) projection (how
every multi-head layer splits its heads), the output is written as (B, N, H, Dv) memory, so
merging the heads back with ``transpose(1, 2).reshape(B, N, H * Dv)`` is a view, not a copy, and
the gradients come back in the projection's order. Without them the results are C-contiguous.

Backends: ``"cpu"`` runs the C++ kernel (``numtrans._cpu``), ``"cuda"`` the GPU kernel
(``numtrans._cuda``; the arrays are copied to the GPU and back: ``numtrans.native.cuda`` takes
device arrays without copying), ``"numpy"`` the readable reference in ``reference.py``,
``"auto"`` the first of ``$NUMTRANS_BACKEND``, ``"cpu"`` if built, else ``"numpy"``. For the cuda
backend, ``deterministic=True`` makes the backward bitwise repeatable (its default adds dq with
atomics). For the cpu backend, ``kernel="reference"`` runs the plain scalar C++ version (the
lesson in ``csrc/cpu/attention_reference.cpp``) and ``isa`` (or ``$NUMTRANS_CPU_ISA``) caps the
instruction set: "avx512", "avx2" or "baseline". Threads: ``numtrans.set_num_threads`` or
``OMP_NUM_THREADS``; the GIL is released while the kernel runs.
"""

from __future__ import annotations

import os

import numpy as np

from .. import backends
from . import _checks, reference

__all__ = [
    "attention_backward",
    "attention_forward",
    "empty_like_heads",
    "last_isa",
    "resolve_backend",
]

_last_isa = [""]


def last_isa() -> str:
    """The instruction set the last native call ran with ("avx2", "baseline", "reference", ...)."""
    return _last_isa[0]


def resolve_backend(backend: str = "auto", dtype=None) -> str:
    """ "auto" -> ``numtrans.backends.resolve`` (the one rule); a name is checked, not switched."""
    return backends.resolve(backend, dtype=dtype)


def _kernels(backend: str):
    """The compiled module for a native backend; it must provide attention_forward/backward."""
    module = backends.get(backend)  # raises, saying why, when the backend is missing
    if not hasattr(module, "attention_forward"):
        raise NotImplementedError(
            f"the {backend!r} module has no fused attention kernel; use backend='cpu' or 'numpy'"
        )
    return module


def _array(x, name: str) -> np.ndarray:
    x = np.asarray(getattr(x, "data", x))  # a numtrans Tensor's array, or an array-like
    _checks.check_rank_and_dtype(name, x.shape, x.dtype)
    if not x.flags.aligned or any(s % x.itemsize for s in x.strides):
        x = np.ascontiguousarray(x)  # the kernel needs whole-element strides
    return x


def _check(q, k, v, attn_mask, is_causal, scale):
    """Validate everything before C++ sees it; return (q, k, v, mask view, scale as float)."""
    q, k, v = _array(q, "q"), _array(k, "k"), _array(v, "v")
    B, H, N, M, D, _ = _checks.check_qkv(q.shape, k.shape, v.shape, q.dtype, k.dtype, v.dtype)
    scale = _checks.resolve_scale(scale, D)
    _checks.check_mask_args(attn_mask, is_causal)
    mask = None
    if attn_mask is not None:
        mask = np.asarray(getattr(attn_mask, "data", attn_mask))
        if mask.dtype != bool:
            if not np.issubdtype(mask.dtype, np.floating):
                raise TypeError(f"attn_mask must be boolean or floating, got {mask.dtype}")
            mask = mask.astype(q.dtype, copy=False)  # at its own (small) shape
        _checks.check_mask_rank(mask.shape)
        try:
            mask = np.broadcast_to(mask, (B, H, N, M))  # a view: broadcast axes get stride 0
        except ValueError:
            raise _checks.broadcast_error(mask.shape, (B, H, N, M)) from None
        if not mask.flags.aligned or any(s % mask.itemsize for s in mask.strides):
            mask = np.ascontiguousarray(mask)
    return q, k, v, mask, scale


def empty_like_heads(x: np.ndarray, shape: tuple, dtype=None) -> np.ndarray:
    """An uninitialised (B, H, rows, cols) array in ``x``'s memory order: the transposed view of
    a (B, rows, H, cols) buffer when ``x`` is such a view (its head stride is the smaller, as for
    heads split off a projection), else C-contiguous."""
    dtype = x.dtype if dtype is None else dtype
    B, H, rows, cols = shape
    heads_inner = x.ndim == 4 and H > 1 and rows > 1 and abs(x.strides[1]) < abs(x.strides[2])
    if heads_inner:
        return np.empty((B, rows, H, cols), dtype).transpose(0, 2, 1, 3)
    return np.empty(shape, dtype)


def _output(given, shape, dtype, name: str, inputs=()):
    """Check an ``out=``-style array before C++ writes into it (None passes through)."""
    if given is None:
        return None
    if any(np.may_share_memory(given, x) for x in inputs):
        raise ValueError(f"{name} must not overlap the inputs or the other outputs")
    if not isinstance(given, np.ndarray) or given.shape != shape or given.dtype != dtype:
        raise ValueError(
            f"{name} must be a NumPy array of shape {shape} and dtype {dtype}, got "
            f"{getattr(given, 'shape', type(given).__name__)} {getattr(given, 'dtype', '')}"
        )
    if not given.flags.writeable or (shape[-1] > 1 and given.strides[-1] != given.itemsize):
        raise ValueError(f"{name} must be writeable, with contiguous rows (last stride 1)")
    if any(s < 0 or s % given.itemsize for s in given.strides) or not given.flags.aligned:
        raise ValueError(f"{name} must have aligned, non-negative, whole-element strides")
    return given


def _isa(isa, backend="cpu"):
    if isa is None and backend == "cpu":
        return os.environ.get("NUMTRANS_CPU_ISA", "")
    return isa or ""


def attention_forward(
    q,
    k,
    v,
    attn_mask=None,
    is_causal=False,
    scale=None,
    backend="cpu",
    *,
    kernel="fast",
    isa=None,
    out=None,
):
    """softmax(scale q k^T + mask) v -> (out (B, H, N, Dv), lse (B, H, N)), in q's dtype;
    written into ``out`` when given."""
    q, k, v, mask, scale = _check(q, k, v, attn_mask, is_causal, scale)
    out = _output(out, q.shape[:3] + v.shape[3:], q.dtype, "out", (q, k, v))
    backend = resolve_backend(backend, q.dtype)
    if backend == "numpy":
        result, lse = reference.forward_numpy(q, k, v, mask, bool(is_causal), scale)
        if out is None:
            return result, lse
        out[...] = result
        return out, lse
    if kernel not in ("fast", "reference"):
        raise ValueError(f"kernel must be 'fast' or 'reference', got {kernel!r}")
    out, lse, used = _kernels(backend).attention_forward(
        q, k, v, mask, bool(is_causal), scale, _isa(isa, backend), kernel == "reference", out
    )
    _last_isa[0] = used
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
    backend="cpu",
    *,
    kernel="fast",
    isa=None,
    deterministic=False,
    dq=None,
    dk=None,
    dv=None,
):
    """Gradients (dq, dk, dv) of sum(grad_out * out); ``out`` and ``lse`` from the forward.
    Written into ``dq``, ``dk``, ``dv`` when given.

    ``deterministic`` only matters for the cuda backend (the cpu kernel always is).
    """
    q, k, v, mask, scale = _check(q, k, v, attn_mask, is_causal, scale)
    B, H, N, _ = q.shape
    expected = (B, H, N, v.shape[3])
    g = np.asarray(getattr(grad_out, "data", grad_out))
    if g.shape != expected:
        raise ValueError(f"grad_out must have the output's shape {expected}, got {g.shape}")
    g = _array(g.astype(q.dtype, copy=False), "grad_out")
    out = _array(np.asarray(out).astype(q.dtype, copy=False), "out")
    if out.shape != expected:
        raise ValueError(f"out must have shape {expected}, got {out.shape}")
    lse = np.ascontiguousarray(lse, dtype=q.dtype)
    if lse.shape != (B, H, N):
        raise ValueError(f"lse must have shape {(B, H, N)}, got {lse.shape}")
    given, seen = [], [q, k, v, g, out]  # an output may overlap neither inputs nor other outputs
    for a, x, name in ((dq, q, "dq"), (dk, k, "dk"), (dv, v, "dv")):
        given.append(_output(a, x.shape, q.dtype, name, seen))
        seen += [a] if a is not None else []
    backend = resolve_backend(backend, q.dtype)
    if backend == "numpy":
        grads = reference.backward_numpy(g, q, k, v, out, lse, mask, bool(is_causal), scale)
        for target, grad in zip(given, grads):
            if target is not None:
                target[...] = grad
        return tuple(grad if target is None else target for target, grad in zip(given, grads))
    if kernel not in ("fast", "reference"):
        raise ValueError(f"kernel must be 'fast' or 'reference', got {kernel!r}")
    variant = _isa(isa, backend)
    if backend == "cuda" and deterministic:
        variant = "deterministic"
    dq, dk, dv, used = _kernels(backend).attention_backward(
        g, q, k, v, out, lse, mask, bool(is_causal), scale, variant, kernel == "reference", *given
    )
    _last_isa[0] = used
    return dq, dk, dv
