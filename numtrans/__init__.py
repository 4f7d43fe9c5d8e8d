"""numtrans: a readable Transformer engine in NumPy.

>>> import numtrans as nt
>>> x = nt.randn(4, 3, requires_grad=True)
>>> loss = (x @ x.T).sum()
>>> loss.backward()
>>> x.grad.shape
(4, 3)
"""

__version__ = "0.1.0"

from . import (
    _thread_env,  # noqa: F401  (first: sets thread-pool defaults before NumPy loads)
    backends,
)
from .autograd import (
    Function,
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_detect_anomaly,
    set_grad_enabled,
)
from .autograd.gradcheck import GradcheckError, gradcheck, gradcheck_direction
from .backends import set_num_threads, show_config
from .creation import (
    arange,
    full,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from .ops.elementwise import clip, exp, log, masked_fill, sqrt, tanh, where
from .ops.linalg import matmul
from .ops.shape import concatenate, gather, split, stack
from .random import get_rng_state, manual_seed, set_rng_state
from .tensor import Tensor, get_default_dtype, set_default_dtype

cat = concatenate

# Subpackages load on first use (``numtrans.nn``, ``numtrans.optim`` ...), keeping import fast.
_SUBPACKAGES = {
    "data",
    "functional",
    "generation",
    "metrics",
    "models",
    "native",
    "nn",
    "optim",
    "tokenizers",
    "training",
    "viz",
}


def __getattr__(name):
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'numtrans' has no attribute {name!r}")


__all__ = [
    "Function",
    "GradcheckError",
    "Tensor",
    "arange",
    "backends",
    "cat",
    "clip",
    "concatenate",
    "detect_anomaly",
    "enable_grad",
    "exp",
    "full",
    "gather",
    "get_default_dtype",
    "get_rng_state",
    "gradcheck",
    "gradcheck_direction",
    "is_grad_enabled",
    "log",
    "manual_seed",
    "masked_fill",
    "matmul",
    "no_grad",
    "ones",
    "ones_like",
    "rand",
    "randint",
    "randn",
    "set_default_dtype",
    "set_detect_anomaly",
    "set_grad_enabled",
    "set_num_threads",
    "set_rng_state",
    "show_config",
    "split",
    "sqrt",
    "stack",
    "tanh",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]
