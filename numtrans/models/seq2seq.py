"""Seq2SeqTransformer: the encoder-decoder translation model of "Attention Is All You Need".

    src (B, S) ids -> emb * sqrt(d) + PE -> encoder (N layers) -> memory            (B, S, d)
    tgt (B, T) ids -> emb * sqrt(d) + PE -> decoder (N layers; causal self-attention,
                                            cross-attention to memory) -> generator (B, T, V_tgt)

Training uses teacher forcing: the decoder reads the reference translation shifted right
(``tgt = [BOS, y1, ..., y_{T-1}]``) and is trained to predict ``targets = [y1, ..., yT]``; the causal
mask stops position t from peeking at y_{t+1}. At inference ``encode`` runs once and ``decode``
is called step by step, with a ``KVCache`` (``make_kv_cache()``): each step feeds only the newest
token, and the cross-attention keys/values of the memory are computed once.

Details from the paper: embeddings are multiplied by sqrt(d_model) before the sinusoidal
encoding is added (section 3.4), so the embeddings are initialised N(0, 1/d_model) and start at
unit scale; dropout follows the sum. Post-norm by default (``norm_first=True`` for pre-norm).
``share_embeddings`` (one table for a joint source/target vocabulary) and ``tie_generator``
(output projection = target embedding) are the paper's weight sharing, both optional.

Padding masks use PyTorch's convention, True = padding. When a mask is not given it is computed
from ``pad_idx`` (``ids == pad_idx``); padded source tokens are hidden from every attention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..functional.losses import cross_entropy
from .pretrained import PretrainedMixin


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int = 8000
    tgt_vocab_size: int = 8000
    d_model: int = 512
    nhead: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    dim_feedforward: int = 2048
    dropout: float = 0.1
    activation: str = "relu"
    norm_first: bool = False
    max_len: int = 5000  # longest sequence the positional table covers
    share_embeddings: bool = False
    tie_generator: bool = False
    pad_idx: int = 0
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError("share_embeddings needs src_vocab_size == tgt_vocab_size")


def _ids(x) -> np.ndarray:
    ids = np.asarray(getattr(x, "data", x))
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"expected (B, T) integer token ids, got shape {ids.shape}, {ids.dtype}")
    return ids


class Seq2SeqTransformer(PretrainedMixin, nn.Module):
    config_class = Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = c = config
        self.src_tok_emb = nn.Embedding(c.src_vocab_size, c.d_model, padding_idx=c.pad_idx)
        if c.share_embeddings:
            self.tgt_tok_emb = self.src_tok_emb  # one module, so one set of weights
        else:
            self.tgt_tok_emb = nn.Embedding(c.tgt_vocab_size, c.d_model, padding_idx=c.pad_idx)
        self.positional = nn.SinusoidalPositionalEncoding(c.d_model, c.max_len, c.dropout)
        self.transformer = nn.Transformer(
            c.d_model, c.nhead, c.num_encoder_layers, c.num_decoder_layers, c.dim_feedforward,
            c.dropout, c.activation, layer_norm_eps=c.layer_norm_eps, batch_first=True,
            norm_first=c.norm_first,
        )  # fmt: skip
        self.generator = nn.Linear(c.d_model, c.tgt_vocab_size)
        for emb in (self.src_tok_emb, self.tgt_tok_emb):
            nn.init.normal_(emb.weight, std=c.d_model**-0.5)  # times sqrt(d) below: unit scale
            emb.weight.data[c.pad_idx] = 0
        nn.init.xavier_uniform_(self.generator.weight)
        nn.init.zeros_(self.generator.bias)
        if c.tie_generator:
            self.generator.weight = self.tgt_tok_emb.weight

    def _embed(self, emb, ids, offset: int = 0):
        return self.positional(emb(ids) * math.sqrt(self.config.d_model), offset)

    def _padding(self, ids, mask):
        """The given padding mask as a bool array, or ``ids == pad_idx``."""
        if mask is None:
            return ids == self.config.pad_idx
        mask = np.asarray(getattr(mask, "data", mask))
        if mask.shape != ids.shape:
            raise ValueError(f"padding mask shape {mask.shape} != token ids shape {ids.shape}")
        return mask

    def encode(self, src, src_padding_mask=None):
        """src (B, S) ids -> memory (B, S, d_model)."""
        src = _ids(src)
        pad = self._padding(src, src_padding_mask)
        return self.transformer.encoder(
            self._embed(self.src_tok_emb, src), src_key_padding_mask=pad
        )

    def decode(self, tgt, memory, memory_padding_mask=None, tgt_padding_mask=None, kv_cache=None):
        """tgt (B, T) ids -> logits (B, T, tgt_vocab_size), attending to ``memory`` (B, S, d).

        ``memory_padding_mask``: (B, S), True = padded source position (pass the source ids'
        mask). With ``kv_cache`` only the new tokens are given, at positions after the cached
        ones, and ``tgt_padding_mask`` is not supported (generated tokens are never padding)."""
        tgt = _ids(tgt)
        offset = 0
        if kv_cache is not None:
            if tgt_padding_mask is not None:
                raise ValueError("tgt_padding_mask cannot be combined with a kv_cache")
            offset = kv_cache.length
        else:
            tgt_padding_mask = self._padding(tgt, tgt_padding_mask)
        if memory_padding_mask is not None:
            memory_padding_mask = np.asarray(
                getattr(memory_padding_mask, "data", memory_padding_mask)
            )
        h = self.transformer.decoder(
            self._embed(self.tgt_tok_emb, tgt, offset), memory,
            tgt_key_padding_mask=tgt_padding_mask, memory_key_padding_mask=memory_padding_mask,
            tgt_is_causal=True, kv_cache=kv_cache,
        )  # fmt: skip
        return self.generator(h)

    def forward(
        self, src, tgt, src_padding_mask=None, tgt_padding_mask=None, targets=None,
        label_smoothing: float = 0.0,
    ):  # fmt: skip
        """(logits (B, T, V), loss or None); the loss ignores ``targets == pad_idx``.

        ``label_smoothing`` eps (the paper used 0.1): the target distribution puts 1 - eps on
        the reference token and eps / V on every token, which keeps the model from becoming
        over-confident (worse perplexity, better BLEU, section 5.4)."""
        src = _ids(src)
        src_pad = self._padding(src, src_padding_mask)
        memory = self.encode(src, src_pad)
        logits = self.decode(tgt, memory, src_pad, tgt_padding_mask)
        loss = None
        if targets is not None:
            targets = np.asarray(getattr(targets, "data", targets)).reshape(-1)
            flat = logits.reshape(-1, logits.shape[-1])
            loss = cross_entropy(
                flat, targets, ignore_index=self.config.pad_idx, label_smoothing=label_smoothing
            )
        return logits, loss

    def make_kv_cache(self) -> nn.KVCache:
        return nn.KVCache(self.config.num_decoder_layers, cross_attention=True)

    def cross_attention_weights(self, src, tgt, src_padding_mask=None) -> np.ndarray:
        """Where the decoder looks in the source: (L, B, H, T, S) weights of every decoder layer.

        A teacher-forced pass over ``tgt`` (B, T) (``[<bos>, y1, ...]``): row t of a map is the
        softmax over source positions of the query that predicts the token after ``tgt[:, t]``
        (each row sums to 1 over the real source tokens). Decoder layers normally call their
        cross-attention with ``need_weights=False`` (the fused kernel); for this one pass each
        is wrapped to return per-head weights, the job a forward hook does in PyTorch."""
        recorded = []
        modules = [layer.multihead_attn for layer in self.transformer.decoder.layers]

        def recording(inner):
            def forward(*args, **kwargs):
                kwargs.update(need_weights=True, average_attn_weights=False)
                out, weights = inner(*args, **kwargs)
                recorded.append(weights.data)
                return out, weights

            return forward

        for attn in modules:
            attn.forward = recording(attn.forward)  # an instance attribute shadows the method
        try:
            with no_grad():
                self(src, tgt, src_padding_mask)
        finally:
            for attn in modules:
                del attn.forward
        return np.stack(recorded)
