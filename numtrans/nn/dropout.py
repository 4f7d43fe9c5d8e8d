"""``Dropout`` (Srivastava et al., 2014): in training, zero each element with probability p and
scale the survivors by 1/(1-p), so the expected value is unchanged and evaluation (``model.eval()``)
is the identity. Shape unchanged: (B, T, C) -> (B, T, C)."""

from __future__ import annotations

from ..functional.layers import dropout
from .module import Module


class Dropout(Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
