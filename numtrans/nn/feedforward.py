"""The position-wise feed-forward block of a Transformer (Vaswani et al., 2017, eq. 2).

    FFN(x) = W2 act(W1 x + b1) + b2        applied to each position separately
    x: (B, T, d_model) -> (B, T, d_ff) -> (B, T, d_model),   d_ff is usually 4 * d_model

Attention mixes information *across* positions; this block then transforms each position's vector
on its own (the same weights at every position, like a 1x1 convolution). The original paper used
ReLU; BERT and GPT use GELU. Dropout sits after the activation, as in PyTorch's layers.
Parameter names ``linear1``/``linear2`` match ``nn.TransformerEncoderLayer``.
"""

from __future__ import annotations

from .activation import get_activation
from .dropout import Dropout
from .linear import Linear
from .module import Module


class FeedForward(Module):
    def __init__(
        self,
        d_model: int,
        d_ff: int | None = None,
        dropout: float = 0.0,
        activation="relu",
        bias: bool = True,
        dtype=None,
    ):
        super().__init__()
        d_ff = 4 * d_model if d_ff is None else d_ff
        self.linear1 = Linear(d_model, d_ff, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(d_ff, d_model, bias=bias, dtype=dtype)
        self.activation_name = activation if isinstance(activation, str) else "custom"
        self.activation = get_activation(activation)

    def forward(self, x):
        return self.linear2(self.dropout(self.activation(self.linear1(x))))

    def extra_repr(self) -> str:
        return f"activation={self.activation_name!r}"


PositionwiseFeedForward = FeedForward
