"""Transformer layers and stacks, mirroring ``torch.nn.Transformer*`` (names, arguments, maths).

Encoder layer (Vaswani et al., 2017, figure 1, left), x: (B, T, d_model) with batch_first=True:

    post-norm (the paper, BERT; ``norm_first=False``)      pre-norm (GPT-2 and later; ``norm_first=True``)
    x = norm1(x + SelfAttn(x))                              x = x + SelfAttn(norm1(x))
    x = norm2(x + FFN(x))                                   x = x + FFN(norm2(x))

Decoder layer (figure 1, right) adds cross-attention between the two: the queries come from the
target sequence, the keys and values from the encoder output ("memory", (B, S, d_model)):

    x = norm1(x + SelfAttn(x, causal mask))                 (or the pre-norm form, as above)
    x = norm2(x + CrossAttn(x, memory))
    x = norm3(x + FFN(x))

Each sub-layer is wrapped in a residual connection: the block only learns a correction to x,
and the gradient reaches early layers through the identity path. Post-norm normalises after the
addition; pre-norm keeps the residual path free of normalisations, which trains deep stacks
more stably without learning-rate warm-up (Xiong et al., 2020); pre-norm stacks then need a
final LayerNorm (``norm=`` of the stack; ``nn.Transformer`` always has one, as in PyTorch).

Masks follow ``nn.MultiheadAttention`` (PyTorch's convention: boolean True = blocked;
``*_key_padding_mask`` (B, S) True = padding). ``is_causal=True`` without a mask builds the causal
mask. Sequence-first (T, B, d_model) is the default layout, as in PyTorch; pass batch_first=True.
"""

from __future__ import annotations

import copy

import numpy as np

from . import init
from .activation import get_activation
from .attention import MultiheadAttention
from .containers import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm


class TransformerEncoderLayer(Module):
    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        dtype=None,
    ):
        super().__init__()
        kw = {"bias": bias, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = get_activation(activation)

    def _sa_block(self, x, mask, key_padding_mask, is_causal):
        x = self.self_attn(
            x, x, x, attn_mask=mask, key_padding_mask=key_padding_mask,
            need_weights=False, is_causal=is_causal,
        )[0]  # fmt: skip
        return self.dropout1(x)

    def _ff_block(self, x):
        """linear2(dropout(act(linear1(x)))), then dropout: (..., d_model) -> (..., d_model)."""
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"


class TransformerDecoderLayer(Module):
    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        dtype=None,
    ):
        super().__init__()
        kw = {"bias": bias, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, batch_first=batch_first, **kw)
        self.multihead_attn = MultiheadAttention(
            d_model, nhead, dropout, batch_first=batch_first, **kw
        )
        self.linear1 = Linear(d_model, dim_feedforward, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = get_activation(activation)

    def _ff_block(self, x):  # as in the encoder layer, with dropout3 last
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(
        self,
        tgt,
        memory,
        tgt_mask=None,
        memory_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
        kv_cache=None,
    ):
        """``kv_cache``: a ``LayerCache`` with self- and cross-attention caches, or None."""
        self_cache = None if kv_cache is None else kv_cache.self_attn
        cross_cache = None if kv_cache is None else kv_cache.cross_attn

        def sa(x):
            x = self.self_attn(
                x, x, x, attn_mask=tgt_mask, key_padding_mask=tgt_key_padding_mask,
                need_weights=False, is_causal=tgt_is_causal, kv_cache=self_cache,
            )[0]  # fmt: skip
            return self.dropout1(x)

        def mha(x):  # cross-attention: queries from the target, keys/values from the memory
            x = self.multihead_attn(
                x, memory, memory, attn_mask=memory_mask,
                key_padding_mask=memory_key_padding_mask, need_weights=False,
                is_causal=memory_is_causal, kv_cache=cross_cache,
            )[0]  # fmt: skip
            return self.dropout2(x)

        x = tgt
        if self.norm_first:
            x = x + sa(self.norm1(x))
            x = x + mha(self.norm2(x))
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + sa(x))
            x = self.norm2(x + mha(x))
            x = self.norm3(x + self._ff_block(x))
        return x

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (deep copies, as in PyTorch), then ``norm``."""

    def __init__(self, encoder_layer, num_layers: int, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src
        for layer in self.layers:
            x = layer(
                x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal
            )
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer``, then ``norm``. ``kv_cache``: a ``KVCache``
    built with ``cross_attention=True`` for incremental decoding."""

    def __init__(self, decoder_layer, num_layers: int, norm=None):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt,
        memory,
        tgt_mask=None,
        memory_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
        kv_cache=None,
    ):
        x = tgt
        for i, layer in enumerate(self.layers):
            x = layer(
                x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                memory_is_causal=memory_is_causal,
                kv_cache=None if kv_cache is None else kv_cache[i],
            )  # fmt: skip
        return x if self.norm is None else self.norm(x)


class Transformer(Module):
    """The encoder-decoder model of the paper, without embeddings or output projection.

    src (B, S, d_model), tgt (B, T, d_model) -> (B, T, d_model) (batch_first=True).
    Matrices are initialised xavier_uniform_ (PyTorch's ``_reset_parameters``)."""

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation="relu",
        custom_encoder=None,
        custom_decoder=None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        dtype=None,
    ):
        super().__init__()
        args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps)
        kw = {"batch_first": batch_first, "norm_first": norm_first, "bias": bias, "dtype": dtype}
        norm_kw = {"eps": layer_norm_eps, "bias": bias, "dtype": dtype}
        if custom_encoder is None:
            layer = TransformerEncoderLayer(*args, **kw)
            custom_encoder = TransformerEncoder(
                layer, num_encoder_layers, LayerNorm(d_model, **norm_kw)
            )
        if custom_decoder is None:
            layer = TransformerDecoderLayer(*args, **kw)
            custom_decoder = TransformerDecoder(
                layer, num_decoder_layers, LayerNorm(d_model, **norm_kw)
            )
        self.encoder, self.decoder = custom_encoder, custom_decoder
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(
        self,
        src,
        tgt,
        src_mask=None,
        tgt_mask=None,
        memory_mask=None,
        src_key_padding_mask=None,
        tgt_key_padding_mask=None,
        memory_key_padding_mask=None,
        src_is_causal: bool = False,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ):
        batch_axis = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_axis] != tgt.shape[batch_axis]:
            raise ValueError(f"src and tgt batch sizes differ: {src.shape} vs {tgt.shape}")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(
                f"src {src.shape} and tgt {tgt.shape} must end with d_model={self.d_model}"
            )
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal,
        )  # fmt: skip

    @staticmethod
    def generate_square_subsequent_mask(sz: int, dtype=np.float32) -> np.ndarray:
        """(sz, sz) float mask: 0 on and below the diagonal, -inf above (no peeking ahead)."""
        return np.triu(np.full((sz, sz), -np.inf, dtype=dtype), k=1)
