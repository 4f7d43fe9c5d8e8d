"""GPT: a decoder-only Transformer language model (Radford et al., 2018, 2019), after nanoGPT.

    idx (B, T) token ids
      -> wte(idx) + wpe(0..T-1)                       (B, T, C)   token + learned position
      -> n_layer x Block:                             (B, T, C)
             x = x + attn(ln_1(x))    causal self-attention: token t sees tokens <= t only
             x = x + mlp(ln_2(x))     Linear(C, 4C) -> GELU -> Linear(4C, C)
      -> ln_f -> lm_head                              (B, T, vocab_size)  next-token logits

Design choices, all as in GPT-2 / nanoGPT:

* pre-norm blocks (the LayerNorm inside the residual branch) and a final ``ln_f``; the original
  Transformer normalised after the addition (post-norm, see ``nn/transformer.py``);
* ``tie_weights``: the output projection reuses the token embedding matrix (Press & Wolf, 2017),
  saving vocab_size * C parameters (38.6M of GPT-2 small's 124M);
* init N(0, 0.02^2) everywhere, and the two projections that write into the residual stream
  (``attn.c_proj``, ``mlp.c_proj``) scaled by 1/sqrt(2 n_layer), because each of the
  2 n_layer residual additions adds variance;
* the exact (erf) GELU by default; GPT-2 used the tanh approximation (``gelu_approximate="tanh"``);
* ``pos="rope"`` replaces the learned positions by rotary embeddings inside attention (LLaMA).

Shape letters (B, T, C, H, V, and hs = C / H, the head size called D in attention) are the
glossary's at the top of ``numtrans/functional/attention.py``.

Layouts are ``Linear``'s (out, in). (Hugging Face GPT-2 checkpoints store Conv1D weights (in, out):
transpose them when converting.) Parameter names follow nanoGPT (``transformer.h.0.attn.c_attn``).

``forward(idx, targets)`` returns (logits, loss); ``targets[b, t]`` is the token that follows
``idx[b, t]`` (-100 = ignore). With a ``KVCache`` (``model.make_kv_cache()``), ``forward`` takes only
the new tokens and returns their logits: incremental decoding for ``generate``.

Packed sequences: ``forward(idx, targets, document_ids=doc)`` with ``doc`` (B, T) ints,
non-decreasing along each row, puts several examples in one row. Token t then attends to key s
only when s <= t and doc[s] == doc[t] (a block-diagonal causal mask, :func:`document_mask`), and
its position restarts at 0 where its document starts (:func:`document_positions`), for learned
positions (``wpe`` is looked up per token) and rotary ones alike (cos/sin gathered per token;
RoPE scores depend only on s - t, so the restart changes nothing in exact arithmetic, but it keeps
every example inside the table and the float results equal to running it alone). Each example's
logits are then those it gets on its own: nothing leaks across the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import checkpoint, is_grad_enabled
from ..functional.activations import gelu
from ..functional.attention import causal_mask, scaled_dot_product_attention
from ..functional.losses import cross_entropy
from ..nn.positional import apply_rotary
from .counting import gpt_flops_per_token
from .pretrained import PretrainedMixin


@dataclass
class GPTConfig:
    block_size: int = 1024  # longest context (number of positions)
    vocab_size: int = 50257  # GPT-2's BPE vocabulary
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768  # C, the width of the residual stream
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm
    pos: str = "learned"  # "learned" (GPT-2) or "rope"
    tie_weights: bool = True  # lm_head.weight is transformer.wte.weight
    rope_base: float = 10000.0
    gelu_approximate: str = "none"  # "tanh" for GPT-2's approximation
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if self.pos not in ("learned", "rope"):
            raise ValueError(f"pos must be 'learned' or 'rope', got {self.pos!r}")


def document_positions(document_ids, shape: tuple) -> np.ndarray:
    """(B, T) position of each token inside its own document: t - (first t of its document).

    ``document_ids`` (B, T) integers, non-decreasing along each row (each example one run).
    """
    doc = np.asarray(getattr(document_ids, "data", document_ids))
    if doc.shape != tuple(shape):
        raise ValueError(f"document_ids {doc.shape} must have the shape of idx {tuple(shape)}")
    if not np.issubdtype(doc.dtype, np.integer):
        raise ValueError(f"document_ids must be integers, got dtype {doc.dtype}")
    if (np.diff(doc, axis=1) < 0).any():
        raise ValueError("document_ids must be non-decreasing along each row (one run per example)")
    T = doc.shape[1]
    t = np.broadcast_to(np.arange(T), doc.shape)
    starts = np.ones(doc.shape, bool)
    starts[:, 1:] = doc[:, 1:] != doc[:, :-1]  # True where a new document begins
    first = np.maximum.accumulate(np.where(starts, t, 0), axis=1)  # its start, carried right
    return t - first


def document_mask(document_ids) -> np.ndarray:
    """Boolean (B, 1, T, T): query t may see key s iff s <= t and doc[s] == doc[t].

    Block-diagonal causal; the 1 broadcasts over heads. True = may attend (PyTorch's SDPA).
    Every query sees at least itself, so no softmax row is empty.
    """
    doc = np.asarray(getattr(document_ids, "data", document_ids))
    T = doc.shape[1]
    same = doc[:, :, None] == doc[:, None, :]  # (B, T, T)
    return (same & causal_mask(T))[:, None]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t attends to positions <= t."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        C = config.n_embd
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(C, 3 * C, bias=config.bias)  # q, k, v in one product
        self.c_proj = nn.Linear(C, C, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, rotary=None, kv_cache=None, packing=None):
        """x (B, T, C) -> (B, T, C). ``packing``: (mask (B, 1, T, T) bool, positions (B, T))
        for packed rows (see the module docstring), else None."""
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, dim=-1)  # 3 x (B, T, C)
        # (B, T, C) -> (B, H, T, hs): each head attends separately, batched over B and H.
        q, k, v = (t.reshape(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
        past = 0 if kv_cache is None else kv_cache.length  # positions already cached
        if rotary is not None and packing is not None:
            # each token's own angle: (B, T, hs) tables -> (B, 1, T, hs), broadcast over heads
            cos, sin = (t[packing[1]][:, None].astype(q.dtype) for t in (rotary.cos, rotary.sin))
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        elif rotary is not None:
            q, k = rotary(q, k, offset=past)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # all keys so far: (B, H, past + T, hs)
        # Without earlier positions this is the plain causal mask; after `past` cached
        # positions the new queries sit at past..past+T-1 and see every cached key (a single
        # new token, the usual decoding step, sees all of them: no mask at all).
        mask = None if past == 0 or T == 1 else causal_mask(T, past + T, offset=past)
        if packing is not None:
            mask = packing[0]  # causal within each document, nothing across documents
        y = scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None and past == 0 and T > 1,
            dropout_p=self.dropout if self.training else 0.0,
        )  # fmt: skip
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        C = config.n_embd
        self.c_fc = nn.Linear(C, 4 * C, bias=config.bias)
        self.c_proj = nn.Linear(4 * C, C, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.approximate = config.gelu_approximate

    def forward(self, x):
        return self.dropout(self.c_proj(gelu(self.c_fc(x), self.approximate)))


class Block(nn.Module):
    """A pre-norm Transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        kw = {"eps": config.layer_norm_eps, "bias": config.bias}
        self.ln_1 = nn.LayerNorm(config.n_embd, **kw)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, **kw)
        self.mlp = MLP(config)

    def forward(self, x, rotary=None, kv_cache=None, packing=None):
        x = x + self.attn(self.ln_1(x), rotary, kv_cache, packing)
        return x + self.mlp(self.ln_2(x))


class GPT(PretrainedMixin, nn.Module):
    config_class = GPTConfig
    gradient_checkpointing = False  # set by gradient_checkpointing_enable() (PretrainedMixin)

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        C = config.n_embd
        layers = {"wte": nn.Embedding(config.vocab_size, C)}
        if config.pos == "learned":
            layers["wpe"] = nn.Embedding(config.block_size, C)
        layers["drop"] = nn.Dropout(config.dropout)
        layers["h"] = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        layers["ln_f"] = nn.LayerNorm(C, eps=config.layer_norm_eps, bias=config.bias)
        self.transformer = nn.ModuleDict(layers)
        self.rotary = None
        if config.pos == "rope":
            self.rotary = nn.RotaryEmbedding(
                C // config.n_head, config.block_size, config.rope_base
            )
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        self._init_weights()
        if config.tie_weights:
            self.lm_head.weight = self.transformer["wte"].weight  # one Parameter, two owners

    def _init_weights(self) -> None:
        """N(0, 0.02^2) weights, zero biases; residual projections N(0, (0.02/sqrt(2L))^2)."""
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.ndim == 2:
                std = 0.02 / math.sqrt(2 * self.config.n_layer) if "c_proj" in name else 0.02
                nn.init.normal_(p, std=std)
            # LayerNorm weights keep their 1s

    def resize_token_embeddings(self, new_num_tokens: int) -> nn.Embedding:
        """Grow (or shrink) the token table to ``new_num_tokens`` rows (Hugging Face's name),
        e.g. after ``add_chat_tokens`` appended special tokens to the tokenizer.

        Rows ``0 .. min(old, new) - 1`` are kept exactly, so every old token id means what it
        meant; new rows are drawn from N(0, 0.02^2) like the rest of the table. A tied
        ``lm_head`` shares the new table; an untied one gets its rows resized the same way.
        Resize before building the optimizer: its state refers to the old Parameters.
        """
        if not isinstance(new_num_tokens, (int, np.integer)) or new_num_tokens < 1:
            raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
        wte = self.transformer["wte"]
        wte.weight = self._resized(wte.weight, new_num_tokens)
        wte.num_embeddings = int(new_num_tokens)
        if self.config.tie_weights:
            self.lm_head.weight = wte.weight
        else:
            self.lm_head.weight = self._resized(self.lm_head.weight, new_num_tokens)
        self.lm_head.out_features = int(new_num_tokens)
        self.config.vocab_size = int(new_num_tokens)
        return wte

    @staticmethod
    def _resized(weight, rows: int) -> nn.Parameter:
        """(rows, C) Parameter: the first rows of ``weight``, then fresh N(0, 0.02^2) rows."""
        old = weight.data
        new = nn.Parameter(np.zeros((rows, old.shape[1]), dtype=old.dtype))
        nn.init.normal_(new, std=0.02)
        keep = min(rows, old.shape[0])
        new.data[:keep] = old[:keep]
        return new

    def make_kv_cache(self) -> nn.KVCache:
        return nn.KVCache(self.config.n_layer)

    def forward(self, idx, targets=None, kv_cache=None, document_ids=None):
        """idx (B, T) ints -> (logits (B, T, vocab), loss or None).

        ``document_ids`` (B, T) ints, non-decreasing per row: packed examples (module docstring).
        """
        idx = np.asarray(getattr(idx, "data", idx))
        if idx.ndim != 2:
            raise ValueError(f"idx must be (B, T) token ids, got shape {idx.shape}")
        B, T = idx.shape
        past = 0 if kv_cache is None else kv_cache.length
        if past + T > self.config.block_size:
            raise ValueError(
                f"sequence of {past + T} positions is longer than block_size {self.config.block_size}"
            )
        packing = None
        if document_ids is not None:
            if kv_cache is not None:
                raise ValueError("document_ids (packed rows) cannot be combined with a kv_cache")
            positions = document_positions(document_ids, idx.shape)
            packing = (document_mask(document_ids), positions)
        x = self.transformer["wte"](idx)  # (B, T, C)
        if self.config.pos == "learned":
            where = np.arange(past, past + T) if packing is None else packing[1]
            x = x + self.transformer["wpe"](where)  # (T, C) broadcasts; (B, T, C) when packed
        x = self.transformer["drop"](x)
        recompute = self.gradient_checkpointing and kv_cache is None and is_grad_enabled()
        for i, block in enumerate(self.transformer["h"]):
            if recompute:  # keep only each block's input; rerun the block in the backward
                x = checkpoint(lambda t, block=block: block(t, self.rotary, None, packing), x)
            else:
                cache = None if kv_cache is None else kv_cache[i].self_attn
                x = block(x, self.rotary, cache, packing)
        logits = self.lm_head(self.transformer["ln_f"](x))  # (B, T, vocab)
        loss = None
        if targets is not None:
            targets = np.asarray(getattr(targets, "data", targets))
            loss = cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1))
        return logits, loss

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (tied weights once). ``non_embedding=True`` leaves out the position
        table and, when untied, the token table: lookups cost no FLOPs (nanoGPT's convention;
        a tied token table stays in, since it is also the output layer)."""
        n = self.num_parameters()
        if non_embedding:
            if "wpe" in self.transformer:
                n -= self.transformer["wpe"].weight.numel()
            if not self.config.tie_weights:
                n -= self.transformer["wte"].weight.numel()
        return n

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token, 6N + 12 L T C (see ``counting.py``)."""
        return gpt_flops_per_token(self.config, seq_len)
