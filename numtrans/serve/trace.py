"""The maths of looking inside: attention weights spelled out, next-token distributions.

The models compute attention with the fused ``scaled_dot_product_attention``, which never
materialises the (T, T) probabilities. To show them, ``gpt_attention`` / ``bert_attention``
re-run the model layer by layer with the model's own modules, spelling the softmax out:

    weights[l, h] = softmax(q_h k_h^T / sqrt(hs) + mask)          (T, T) per layer l, head h
    y = weights @ v                                              then the block goes on as usual

The traced forward ends in the same logits as ``model(ids)`` (the tests check this), so the
weights shown are the ones the model really used. Models are not modified.
"""

from __future__ import annotations

import numpy as np

from ..functional.attention import attention_weights
from ..generation.sampling import filter_top_k, filter_top_p
from ..models.gpt import GPT


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def gpt_attention(model, ids: np.ndarray):
    """(T,) ids -> (weights (L, H, T, T), logits (T, V) or None for a classifier body).

    ``model`` is a ``GPT`` or a ``GPTForSequenceClassification`` (same ``transformer`` dict)."""
    tr, T = model.transformer, len(ids)
    x = tr["wte"](ids[None])
    if model.config.pos == "learned":
        x = x + tr["wpe"](np.arange(T))
    layers = []
    for block in tr["h"]:
        attn = block.attn
        h = block.ln_1(x)
        C = h.shape[-1]
        hs = C // attn.n_head
        q, k, v = attn.c_attn(h).split(C, axis=-1)
        q, k, v = (t.reshape(1, T, attn.n_head, hs).transpose(1, 2) for t in (q, k, v))
        if model.rotary is not None:
            q, k = model.rotary(q, k, offset=0)
        w = attention_weights(q, k, is_causal=True)  # (1, H, T, T)
        layers.append(w.data[0])
        y = (w @ v).transpose(1, 2).reshape(1, T, C)
        x = x + attn.c_proj(y)
        x = x + block.mlp(block.ln_2(x))
    logits = None
    if isinstance(model, GPT):
        logits = model.lm_head(tr["ln_f"](x)).data[0]
    return np.stack(layers), logits


def bert_attention(bert, ids: np.ndarray):
    """(T,) ids -> (weights (L, H, T, T), last hidden state (T, hidden)) for a ``BertModel``."""
    T = len(ids)
    x = bert.embeddings(ids[None], np.zeros((1, T), dtype=np.int64))
    layers = []
    for layer in bert.encoder.layer:
        sa = layer.attention.self
        H = x.shape[-1]

        def heads(t, sa=sa, H=H):
            return t.reshape(1, T, sa.num_heads, H // sa.num_heads).transpose(1, 2)

        q, k, v = heads(sa.query(x)), heads(sa.key(x)), heads(sa.value(x))
        w = attention_weights(q, k)  # no padding: one sentence, every token sees every token
        layers.append(w.data[0])
        y = (w @ v).transpose(1, 2).reshape(1, T, H)
        a = layer.attention.output(y, x)
        x = layer.output(layer.intermediate(a), a)
    return np.stack(layers), x.data[0]


def next_token_distribution(
    logits: np.ndarray, temperature: float = 1.0, top_k=None, top_p=None
) -> np.ndarray:
    """The probabilities ``sample_next`` draws from: softmax(filter(logits / temperature)).

    ``temperature == 0`` is greedy decoding: all the mass on the argmax."""
    logits = np.asarray(logits, dtype=np.float64)[None]
    if temperature == 0:
        p = np.zeros_like(logits)
        p[0, np.argmax(logits[0])] = 1.0
        return p[0]
    logits = logits / temperature
    if top_k is not None:
        logits = filter_top_k(logits, top_k)
    if top_p is not None:
        logits = filter_top_p(logits, top_p)
    return _softmax(logits)[0]
