"""``LayerNorm`` (Ba, Kiros & Hinton, 2016): normalise each position's features.

    y = (x - mean) / sqrt(var + eps) * weight + bias      over the last axes (normalized_shape)
    x: (B, T, C), normalized_shape = C  ->  y: (B, T, C)

Unlike batch norm, the statistics come from one position's C features only, so it behaves the same
in training and evaluation and for any batch size. weight starts at 1 and bias at 0, so the layer
starts as pure normalisation. The variance is the biased one (divide by C), as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from ..functional.layers import layer_norm
from ..tensor import get_default_dtype
from .module import Module, Parameter


class LayerNorm(Module):
    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype=None,
    ):
        super().__init__()
        shape = (
            (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        )
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        dtype = dtype or get_default_dtype()
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )
