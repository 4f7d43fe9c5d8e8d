"""Choose where ``scaled_dot_product_attention`` runs: the NumPy reference or a native kernel.

Kept apart from ``attention.py`` so that the textbook function stays plain NumPy math. The rule
itself lives in one place, ``numtrans.backends.resolve`` (argument, then ``backends.use(...)``,
then ``NUMTRANS_BACKEND``, then the compiled kernel when built; dropout and dtypes the kernels do
not take stay in NumPy). This file adds the one check that needs ``numtrans.native``: a package
whose fused-attention wrapper cannot be imported counts as absent.
"""

from __future__ import annotations

import importlib

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


def resolve_backend(backend: str = "auto", dropout_p: float = 0.0, dtype=None) -> str:
    """Turn ``backend`` ("auto" or a name) into the backend that will actually run."""
    chosen = backends.resolve(backend, dropout_p=dropout_p, dtype=dtype)
    if chosen == "numpy" or _native_module() is not None:
        return chosen
    if (backend or "auto").lower() == "auto":
        return "numpy"
    raise RuntimeError(
        f"attention backend {chosen!r}: numtrans.native.fused_attention (the fused kernels) "
        "cannot be imported"
    )


def native_attention(q, k, v, attn_mask, is_causal: bool, scale, backend: str):
    """Call the fused kernel: ``numtrans.native.fused_attention`` returns a Tensor."""
    return _native_module().fused_attention(
        q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale, backend=backend
    )
