"""``Function``: write a custom op as a forward and a backward on NumPy arrays.

This is how the native kernels (and any op you write yourself) plug into autograd::

    class Square(Function):
        @staticmethod
        def forward(ctx, x):              # x: np.ndarray
            ctx.save_for_backward(x)
            return x * x
        @staticmethod
        def backward(ctx, grad_out):      # d(loss)/d(out) -> d(loss)/d(x)
            (x,) = ctx.saved_tensors
            return 2 * x * grad_out

    y = Square.apply(t)                   # t: Tensor -> y: Tensor

``forward`` receives Tensors unwrapped to arrays (other arguments as given); ``backward`` returns
one gradient (or None) per positional argument of ``forward``.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, make_result


class Context:
    """Scratch space shared by one call's forward and backward."""

    def __init__(self):
        self.saved_tensors = ()

    def save_for_backward(self, *arrays) -> None:
        self.saved_tensors = arrays


class Function:
    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_out):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        ctx = Context()
        tensor_slots = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        out = np.asarray(cls.forward(ctx, *raw))

        def backward(g):
            grads = cls.backward(ctx, g)
            if not isinstance(grads, tuple):
                grads = (grads,)
            if len(grads) != len(args):
                raise RuntimeError(
                    f"{cls.__name__}.backward returned {len(grads)} gradients for {len(args)} inputs"
                )
            return tuple(grads[i] for i in tensor_slots)

        parents = tuple(args[i] for i in tensor_slots)
        return make_result(out, parents, backward, cls.__name__)
