"""Activation modules (elementwise, any shape): ``ReLU``, ``GELU``, ``Tanh``, ``Softmax``.

* ReLU(x) = max(x, 0)                 the original Transformer's feed-forward activation
* GELU(x) = x * Phi(x)                BERT and GPT; Phi is the standard normal CDF.
  ``approximate="tanh"`` uses GPT-2's tanh formula instead of the exact erf.
"""

from __future__ import annotations

from ..functional.activations import gelu, relu, softmax, tanh
from .module import Module


class ReLU(Module):
    def forward(self, x):
        return relu(x)


class GELU(Module):
    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    def forward(self, x):
        return tanh(x)


class Softmax(Module):
    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def get_activation(name_or_fn):
    """ "relu" / "gelu" / "gelu_tanh" -> a function of one Tensor; a callable passes through."""
    if callable(name_or_fn):
        return name_or_fn
    table = {"relu": relu, "gelu": gelu, "gelu_tanh": lambda x: gelu(x, "tanh")}
    if name_or_fn not in table:
        raise ValueError(f"unknown activation {name_or_fn!r}; expected one of {sorted(table)}")
    return table[name_or_fn]
