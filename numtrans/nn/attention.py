"""``MultiheadAttention``: h attention heads side by side (Vaswani et al., 2017, section 3.2.2).

    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)          each head works in D = C / H dims
    MultiHead(Q, K, V) = Concat(head_1, ..., head_H) W^O

Shape letters are the glossary's (top of ``numtrans/functional/attention.py``): C = embed_dim,
H = num_heads, N queries, M keys. All heads are computed at once: one projection to C = H * D
features, reshaped to (B, H, N, D), so the attention matmuls are batched over heads. Shapes
(batch_first=True):

    query (B, N, C), key (B, M, kdim), value (B, M, vdim)  ->  output (B, N, C)
    attention weights (B, N, M) averaged over heads, or (B, H, N, M)

This module mirrors ``torch.nn.MultiheadAttention``: same arguments, the sequence-first layout
(L, B, E) by default (``batch_first=False``), the same parameter names (``in_proj_weight`` (3E, E)
stacking W^Q, W^K, W^V; ``in_proj_bias`` (3E,); ``out_proj.weight/bias``; separate
``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when kdim or vdim differ from E) and the same
initialisation (xavier_uniform_ projections, zero biases), so a PyTorch state_dict loads directly.

MASK CONVENTION (PyTorch's, and the opposite of ``F.scaled_dot_product_attention``):

* ``key_padding_mask`` (B, S): True = this key is padding, IGNORE it.
* ``attn_mask`` (L, S) or (B * h, L, S): boolean True = NOT allowed to attend; float = added.
* ``is_causal=True`` without ``attn_mask`` builds the causal mask (PyTorch would require the mask);
  with ``attn_mask`` it is only a hint, as in PyTorch.

Differences from PyTorch: a query whose keys are all masked returns zeros, not NaN;
``add_bias_kv`` and ``add_zero_attn`` are not implemented. ``kv_cache`` (an ``AttentionCache``,
see ``kv_cache.py``) enables incremental decoding.
"""

from __future__ import annotations

import numpy as np

from ..functional.attention import (
    attention_weights,
    causal_mask,
    contiguous,
    scaled_dot_product_attention,
)
from ..functional.layers import dropout, linear
from ..tensor import get_default_dtype
from . import init
from .linear import Linear
from .module import Module, Parameter


def _array(x) -> np.ndarray:
    return np.asarray(getattr(x, "data", x))


def to_allowed(mask):
    """PyTorch's ``nn.MultiheadAttention`` convention -> the library's, once, at the edge.

    ``nn.MultiheadAttention`` takes boolean masks with True = "blocked" (PyTorch's choice for
    this module); everything inside numtrans, like ``F.scaled_dot_product_attention``, means
    True = "may attend". Float masks are additive in both and pass through unchanged.
    """
    if mask is None:
        return None
    m = _array(mask)
    return ~m if m.dtype == bool else m


def merge_masks(attn_mask, key_padding_mask, B: int, H: int, dtype):
    """Combine masks in the library's convention (boolean True = may attend, or additive float)
    into one SDPA mask broadcasting to (B, H, L, S): boolean if both are, else additive."""
    masks = []
    if attn_mask is not None:
        m = _array(attn_mask)
        if m.ndim == 3:  # (B * H, L, S) -> (B, H, L, S)
            m = m.reshape(B, H, *m.shape[1:])
        masks.append(m)
    if key_padding_mask is not None:
        m = _array(key_padding_mask)
        if m.shape[0] != B:
            raise ValueError(f"key_padding_mask has shape {m.shape}, expected ({B}, S)")
        masks.append(m[:, None, None, :])  # (B, S) -> (B, 1, 1, S): the same for all queries
    if not masks:
        return None
    if all(m.dtype == bool for m in masks):
        allowed = masks[0]
        for m in masks[1:]:
            allowed = allowed & m
        return allowed
    total = 0.0
    for m in masks:
        total = total + (np.where(m, 0.0, -np.inf) if m.dtype == bool else m)
    return np.asarray(total, dtype=dtype)


class MultiheadAttention(Module):
    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        dtype=None,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("add_bias_kv and add_zero_attn are not implemented")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        dtype = dtype or get_default_dtype()
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * E, E), dtype=dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(np.empty((E, E), dtype=dtype))
            self.k_proj_weight = Parameter(np.empty((E, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.empty((E, self.vdim), dtype=dtype))
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * E, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _project(self, x, i: int):
        """Input projection i (0 = query, 1 = key, 2 = value) of x (B, T, d): (B, T, E)."""
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight[i * E : (i + 1) * E]
        else:
            w = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
        b = None if self.in_proj_bias is None else self.in_proj_bias[i * E : (i + 1) * E]
        return linear(x, w, b)

    def _heads(self, x):
        """(B, T, E) -> (B, H, T, hs): split the features into heads, heads before time."""
        B, T, _ = x.shape
        return x.reshape(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query,
        key,
        value,
        key_padding_mask=None,
        need_weights: bool = True,
        attn_mask=None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
        kv_cache=None,
    ):
        """Returns (output, weights); weights is None unless ``need_weights``."""
        unbatched = query.ndim == 2
        if unbatched:  # (L, E): add a batch axis of 1
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = _array(key_padding_mask)[None]
        if not self.batch_first or unbatched:  # (T, B, E) -> (B, T, E); `is` kept for self-attn
            same_kv, same_qk = key is value, query is key
            query = query.transpose(0, 1)
            key = query if same_qk else key.transpose(0, 1)
            value = key if same_kv else value.transpose(0, 1)
        B, L, E = query.shape

        # With a self-attention cache, the L new queries follow `past` cached positions.
        past = kv_cache.length if kv_cache is not None and not kv_cache.static else 0
        if self._qkv_same_embed_dim and query is key and key is value and kv_cache is None:
            # Self-attention: one (B, L, E) x (E, 3E) product instead of three.
            q, k, v = linear(query, self.in_proj_weight, self.in_proj_bias).split(E, dim=-1)
            q, k, v = self._heads(q), self._heads(k), self._heads(v)
        else:
            q = self._heads(self._project(query, 0))

            if kv_cache is not None and kv_cache.static and kv_cache.filled:
                k, v = kv_cache.keys_values()  # cross-attention: the memory's, computed once
            else:
                k = self._heads(self._project(key, 1))
                v = self._heads(self._project(value, 2))
                if kv_cache is not None:
                    k, v = kv_cache.update(k, v)  # all keys so far: (B, H, past + L, hd)

        # The public edge: from here on every mask means True = may attend (see to_allowed).
        attn_mask, key_padding_mask = to_allowed(attn_mask), to_allowed(key_padding_mask)
        if is_causal and attn_mask is None:
            attn_mask = causal_mask(L, k.shape[-2], offset=past)
        mask = merge_masks(attn_mask, key_padding_mask, B, self.num_heads, q.dtype)
        p_drop = self.dropout if self.training else 0.0

        if need_weights:  # the weights are needed, so spell out the softmax here
            weights = attention_weights(q, k, mask)  # (B, H, L, S)
            weights = dropout(weights, p_drop, training=p_drop > 0)
            out = weights @ contiguous(v)
        else:
            out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p_drop)
            weights = None
        out = self.out_proj(out.transpose(1, 2).reshape(B, L, E))  # merge heads: (B, L, E)

        if not self.batch_first or unbatched:
            out = out.transpose(0, 1)
        if weights is not None and average_attn_weights:
            weights = weights.mean(axis=1)  # (B, L, S)
        if unbatched:
            out = out.squeeze(1)
            weights = None if weights is None else weights.squeeze(0)
        return out, weights

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
            f"batch_first={self.batch_first}"
        )
