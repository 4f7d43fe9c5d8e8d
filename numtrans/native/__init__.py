"""Native fused attention: the C++ kernel (``numtrans._cpu``) behind a checked Python API.

* ``attention_forward`` / ``attention_backward``: NumPy arrays in, NumPy arrays out
  (``attention.py``; the NumPy path they fall back to is ``reference.py``);
* ``fused_attention``: numtrans Tensors in, a differentiable Tensor out (``function.py``);
  ``F.scaled_dot_product_attention(..., backend="cpu")`` calls it;
* ``numtrans.native.cuda``: the GPU kernel (``numtrans._cuda``) on torch CUDA tensors or CuPy
  arrays, without copies (``backend="cuda"`` above takes NumPy arrays and copies them).

The kernels themselves, written as a lesson, are in ``csrc/cpu/attention_*.{hpp,cpp}`` (and
``csrc/cuda/attention*`` for the GPU); ``tutorials/10_fused_attention.py`` derives them step by
step.
"""

from .attention import attention_backward, attention_forward, last_isa, resolve_backend
from .function import FusedAttention, fused_attention

__all__ = [
    "FusedAttention",
    "attention_backward",
    "attention_forward",
    "fused_attention",
    "last_isa",
    "resolve_backend",
]
