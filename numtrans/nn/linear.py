"""``Linear``: y = x W^T + b, applied to the last axis.

    x: (..., in_features)  ->  y: (..., out_features)
    weight: (out_features, in_features)  (PyTorch's layout: row i computes output i)
    bias:   (out_features,)

Initialisation (PyTorch's default): W and b ~ U(-1/sqrt(in), 1/sqrt(in)), i.e. kaiming_uniform_
with a = sqrt(5) (see ``init.py``). Models such as GPT and BERT re-initialise with N(0, 0.02^2).
"""

from __future__ import annotations

import math

import numpy as np

from ..functional.layers import linear
from ..tensor import get_default_dtype
from . import init
from .module import Module, Parameter


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        dtype = dtype or get_default_dtype()
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(-1/sqrt(in), 1/sqrt(in))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
