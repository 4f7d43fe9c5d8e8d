"""Look inside a loaded model: tokens, attention weights, next-token distributions, classes.

The models compute attention with the fused ``scaled_dot_product_attention``, which never
materialises the (T, T) probabilities. To show them, ``attention`` re-runs the model layer by
layer with the model's own modules, spelling the softmax out:

    weights[l, h] = softmax(q_h k_h^T / sqrt(hs) + mask)          (T, T) per layer l, head h
    y = weights @ v                                              then the block goes on as usual

The traced forward ends in the same logits as ``model(ids)`` (the tests check this), so the
weights shown are the ones the model really used. Models are not modified.

``Probe`` bundles a model directory's model and tokenizer. Supported: ``GPT`` (from
``numtrans pretrain``, a Hugging Face GPT-2 directory), ``BertModel`` / ``BertForMaskedLM`` /
``BertForSequenceClassification`` / ``GPTForSequenceClassification`` and Hugging Face BERT
directories such as all-MiniLM-L6-v2. Every method runs under ``no_grad``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..autograd import no_grad
from ..finetune.models import load_tokenizer, model_kind
from ..functional.attention import attention_weights
from ..generation.sampling import filter_top_k, filter_top_p
from ..models import BertForSequenceClassification, BertModel
from ..models.bert_heads import BertForMaskedLM
from ..models.gpt import GPT
from ..models.gpt_heads import GPTForSequenceClassification

GPT_KINDS = {
    "GPT": GPT,
    "hf-gpt2": GPT,
    "GPTForSequenceClassification": GPTForSequenceClassification,
}
BERT_KINDS = {
    "BertModel": BertModel,
    "hf-bert": BertModel,
    "BertForMaskedLM": BertForMaskedLM,
    "BertForSequenceClassification": BertForSequenceClassification,
}


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


class Probe:
    """A model directory's model and tokenizer, with the explorer's questions as methods."""

    def __init__(self, directory: str, name: str | None = None):
        directory = os.fspath(directory)
        kind = model_kind(directory)
        if kind in GPT_KINDS:
            self.family, cls = "gpt", GPT_KINDS[kind]
        elif kind in BERT_KINDS:
            self.family, cls = "bert", BERT_KINDS[kind]
        else:
            raise ValueError(f"{directory!r} holds a {kind}, which the explorer cannot show")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. an MLM head's tensors left out of BertModel
            self.model = cls.from_pretrained(directory)
        self.model.eval()
        self.kind, self.directory = kind, directory
        self.name = name or os.path.basename(os.path.normpath(directory))
        self.tokenizer = load_tokenizer(directory)

    # ------------------------------------------------------------------ facts
    @property
    def config(self):
        return self.model.config

    @property
    def bert(self):
        return self.model if isinstance(self.model, BertModel) else self.model.bert

    @property
    def n_layer(self) -> int:
        c = self.config
        return c.n_layer if self.family == "gpt" else c.num_hidden_layers

    @property
    def n_head(self) -> int:
        c = self.config
        return c.n_head if self.family == "gpt" else c.num_attention_heads

    @property
    def max_tokens(self) -> int:
        c = self.config
        return c.block_size if self.family == "gpt" else c.max_position_embeddings

    @property
    def can_generate(self) -> bool:
        return isinstance(self.model, GPT)

    @property
    def can_classify(self) -> bool:
        return isinstance(self.model, (BertForSequenceClassification, GPTForSequenceClassification))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "family": self.family,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "max_tokens": self.max_tokens,
            "vocab_size": self.config.vocab_size,
            "tokenizer": type(self.tokenizer).__name__,
            "views": ["tokens", "attention"]
            + (["next", "generate"] if self.can_generate else [])
            + (["classify"] if self.can_classify else []),
        }

    # ------------------------------------------------------------------ questions
    def encode(self, text: str) -> tuple[list[int], bool]:
        """Token ids of ``text`` cut to the model's ``max_tokens``; returns (ids, truncated).

        A GPT keeps the LAST tokens (the context that predicts what comes next); a BERT keeps
        the first ones and its final [SEP]."""
        if not text:
            raise ValueError("text is empty")
        ids = list(self.tokenizer.encode(text))
        if not ids:
            raise ValueError("text encodes to no tokens")
        n = self.max_tokens
        if len(ids) <= n:
            return ids, False
        if self.family == "gpt":
            return ids[-n:], True
        return ids[: n - 1] + ids[-1:], True

    def tokens(self, ids: list[int]) -> list[dict]:
        special = getattr(self.tokenizer, "special_ids", set())
        return [
            {
                "id": int(i),
                "piece": self.tokenizer.id_to_token(int(i)),
                "special": int(i) in special,
            }
            for i in ids
        ]

    def attention(self, ids: list[int]) -> np.ndarray:
        """(L, H, T, T) attention probabilities of every layer and head."""
        ids = np.asarray(ids, dtype=np.int64)
        with no_grad():
            if self.family == "gpt":
                return gpt_attention(self.model, ids)[0]
            return bert_attention(self.bert, ids)[0]

    def next_logits(self, ids: list[int]) -> np.ndarray:
        """(V,) logits for the token after ``ids`` (a GPT language model only)."""
        if not self.can_generate:
            raise ValueError(f"model {self.name!r} ({self.kind}) does not predict next tokens")
        with no_grad():
            logits, _ = self.model(np.asarray([ids[-self.max_tokens :]], dtype=np.int64))
        return logits.data[0, -1].astype(np.float64)

    def classify(self, ids: list[int]) -> np.ndarray:
        """(num_labels,) class probabilities (a sequence classifier only)."""
        if not self.can_classify:
            raise ValueError(f"model {self.name!r} ({self.kind}) has no classifier head")
        with no_grad():
            out = self.model(np.asarray([ids], dtype=np.int64))
        return _softmax(out.logits.data[0].astype(np.float64))
