"""Choose where ``scaled_dot_product_attention`` runs: the NumPy reference or a native kernel.

Kept apart from ``attention.py`` so that the textbook function stays plain NumPy math.

``backend="auto"`` resolves, in order:

1. the environment variable ``NUMTRANS_BACKEND`` ("numpy", "cpu" or "cuda") if it is set;
2. "numpy" when ``dropout_p > 0`` (the fused kernels do not implement attention dropout) or when
   the native module is missing (``numtrans.backends.is_available("cpu")`` is false or
   ``numtrans.native`` cannot be imported);
3. "cpu" otherwise.

A backend named explicitly (argument or environment variable) that is not available raises an
error saying why, instead of silently running something else. The one exception is dropout:
it always runs in NumPy, unless the backend was passed explicitly, which then raises.
"""

from __future__ import annotations

import importlib
import os

from .. import backends

BACKENDS = ("numpy", "cpu", "cuda")


_found = []  # numtrans.native once it has been imported successfully (this runs per attention call)


def _native_module():
    """``numtrans.native`` if it can be imported and provides ``fused_attention``, else None
    (it is optional; a half-installed package without the function counts as absent)."""
    if _found:
        return _found[0]
    try:
        module = importlib.import_module("numtrans.native")
    except ImportError:
        return None
    if not callable(getattr(module, "fused_attention", None)):
        return None
    _found.append(module)
    return module


def native_available(name: str = "cpu") -> bool:
    return backends.is_available(name) and _native_module() is not None


def resolve_backend(backend: str = "auto", dropout_p: float = 0.0) -> str:
    """Turn ``backend`` ("auto" or a name) into the backend that will actually run."""
    backend = (backend or "auto").lower()
    if backend != "auto":
        if backend not in BACKENDS:
            raise ValueError(
                f"unknown attention backend {backend!r}; expected 'auto' or {BACKENDS}"
            )
        if backend != "numpy" and dropout_p > 0:
            raise ValueError(
                f"backend={backend!r} has no attention dropout; use backend='numpy' or "
                f"dropout_p=0 (got dropout_p={dropout_p})"
            )
        _require(backend)
        return backend
    forced = os.environ.get("NUMTRANS_BACKEND", "").strip().lower()
    if forced and forced != "auto":
        if forced not in BACKENDS:
            raise ValueError(f"NUMTRANS_BACKEND={forced!r}; expected 'auto' or one of {BACKENDS}")
        if forced == "numpy" or dropout_p > 0:
            return "numpy"
        _require(forced)
        return forced
    if dropout_p > 0 or not native_available("cpu"):
        return "numpy"
    return "cpu"


def _require(name: str) -> None:
    if name == "numpy":
        return
    if not backends.is_available(name):
        raise RuntimeError(f"attention backend {name!r} is not available: {backends.reason(name)}")
    if _native_module() is None:
        raise RuntimeError(
            f"attention backend {name!r}: numtrans.native.fused_attention (the fused kernels) "
            "cannot be imported"
        )


def native_attention(q, k, v, attn_mask, is_causal: bool, scale, backend: str):
    """Call the fused kernel: ``numtrans.native.fused_attention`` returns a Tensor."""
    return _native_module().fused_attention(
        q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale, backend=backend
    )
