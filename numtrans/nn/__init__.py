"""``numtrans.nn``: modules (layers with parameters) in PyTorch's image.

Module system: ``Module``, ``Parameter``, ``Sequential``, ``ModuleList``, ``ModuleDict``.
Layers: ``Linear``, ``Embedding``, ``LayerNorm``, ``Dropout``, ``ReLU``, ``GELU``, ``FeedForward``.
Attention: ``MultiheadAttention``; positions: ``SinusoidalPositionalEncoding``,
``LearnedPositionalEmbedding``, ``RotaryEmbedding``; ``KVCache`` for incremental decoding.
Transformer: ``TransformerEncoderLayer``, ``TransformerDecoderLayer``, ``TransformerEncoder``,
``TransformerDecoder``, ``Transformer``. Initialisers in ``numtrans.nn.init``.
"""

from . import init
from .activation import GELU, ReLU, Softmax, Tanh
from .attention import MultiheadAttention
from .containers import ModuleDict, ModuleList, Sequential
from .dropout import Dropout
from .embedding import Embedding
from .feedforward import FeedForward, PositionwiseFeedForward
from .kv_cache import AttentionCache, KVCache, LayerCache
from .linear import Linear
from .module import Module, Parameter
from .normalization import LayerNorm
from .positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    sinusoidal_encoding,
)
from .transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "GELU",
    "AttentionCache",
    "Dropout",
    "Embedding",
    "FeedForward",
    "KVCache",
    "LayerCache",
    "LayerNorm",
    "LearnedPositionalEmbedding",
    "Linear",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiheadAttention",
    "Parameter",
    "PositionwiseFeedForward",
    "ReLU",
    "RotaryEmbedding",
    "Sequential",
    "SinusoidalPositionalEncoding",
    "Softmax",
    "Tanh",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "apply_rotary",
    "init",
    "sinusoidal_encoding",
]
