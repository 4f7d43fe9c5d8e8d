"""``numtrans.functional`` (imported as ``F``): stateless ops with autograd, PyTorch's names."""

from ..ops.elementwise import clip, masked_fill, where
from ..ops.shape import concatenate, gather, stack
from .activations import gelu, log_softmax, logsigmoid, relu, sigmoid, softmax, tanh
from .attention import scaled_dot_product_attention
from .layers import dropout, embedding, layer_norm, linear
from .losses import cross_entropy, mse_loss, nll_loss

__all__ = [
    "clip",
    "concatenate",
    "cross_entropy",
    "dropout",
    "embedding",
    "gather",
    "gelu",
    "layer_norm",
    "linear",
    "log_softmax",
    "logsigmoid",
    "masked_fill",
    "mse_loss",
    "nll_loss",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "softmax",
    "stack",
    "tanh",
    "where",
]
