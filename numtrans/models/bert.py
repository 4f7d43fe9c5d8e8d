"""BERT: a bidirectional Transformer encoder (Devlin et al., 2019).

    input_ids (B, T), token_type_ids (B, T) (segment A = 0 / B = 1), attention_mask (B, T) (1 = token)
      -> word + position + token_type embeddings, LayerNorm, dropout        (B, T, C)
      -> num_hidden_layers x BertLayer (post-norm, like the original Transformer):
             a = LayerNorm(x + dropout(dense(SelfAttention(x))))           every token sees all
             x = LayerNorm(a + dropout(dense(GELU(dense(a)))))             C -> I -> C
      -> last_hidden_state (B, T, C);  pooler_output = tanh(dense(h[:, 0])) (B, C)

``output_hidden_states=True`` also returns ``hidden_states``: the embedding output and every
layer's output, L + 1 tensors (B, T, C); ``output_attentions=True`` returns ``attentions``: each
layer's softmax probabilities (B, H, T, T), computed by the explicit NumPy path (the fused
kernels never form them). Hugging Face's names; both off by default, which changes nothing.

Unlike GPT, attention is not causal: each token sees the whole sentence, left and right. That is
why BERT is pre-trained by masked language modelling (predict hidden tokens, ``bert_heads.py``)
rather than next-token prediction. Position embeddings are learned; GELU is the exact erf form.

Names mirror Hugging Face ``transformers`` (``embeddings.word_embeddings``,
``encoder.layer.0.attention.self.query``, ``attention.output.dense``, ``intermediate.dense``,
``output.LayerNorm``, ``pooler.dense``), so its checkpoints map one to one.
Padding (``attention_mask`` 0) is hidden from every query; a fully padded row gives finite output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import checkpoint, is_grad_enabled
from ..functional.activations import gelu, tanh
from ..functional.attention import attention_weights, scaled_dot_product_attention
from ..functional.layers import dropout
from ..tokenizers import WordPieceTokenizer
from .pretrained import PretrainedMixin

POOLINGS = ("pooled", "cls", "mean")


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768  # C (shape letters: see numtrans/functional/attention.py)
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072  # I, the feed-forward width
    hidden_act: str = "gelu"  # "gelu" (exact), "gelu_new" (tanh) or "relu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    num_labels: int = 2  # for BertForSequenceClassification; 1 means regression
    problem_type: str | None = None  # None, "regression" or "single_label_classification"
    classifier_dropout: float | None = None  # None: use hidden_dropout_prob
    classifier_pooling: str = "pooled"  # sentence vector: "pooled", "cls" or "mean" (bert_heads)

    def __post_init__(self):
        if self.classifier_pooling not in POOLINGS:
            raise ValueError(
                f"classifier_pooling must be one of {POOLINGS}, got {self.classifier_pooling!r}"
            )
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by "
                f"num_attention_heads {self.num_attention_heads}"
            )


def activation(name: str):
    table = {"gelu": gelu, "gelu_new": lambda x: gelu(x, "tanh"), "relu": lambda x: x.relu()}
    if name not in table:
        raise ValueError(f"unknown hidden_act {name!r}; expected one of {sorted(table)}")
    return table[name]


@dataclass
class BertModelOutput:
    last_hidden_state: object  # (B, T, C)
    pooler_output: object = None  # (B, C), None without a pooler
    hidden_states: tuple | None = None  # L + 1 x (B, T, C): embeddings, then each layer
    attentions: tuple | None = None  # L x (B, H, T, T): each layer's attention probabilities


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        C = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, C, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, C)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, C)
        self.LayerNorm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.max_len = config.max_position_embeddings

    def forward(self, input_ids: np.ndarray, token_type_ids: np.ndarray):
        T = input_ids.shape[1]
        if T > self.max_len:
            raise ValueError(
                f"sequence of {T} tokens exceeds max_position_embeddings {self.max_len}"
            )
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(np.arange(T))  # (T, C) broadcasts over the batch
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Separate query/key/value projections (C -> C), split into heads, softmax attention."""

    def __init__(self, config: BertConfig):
        super().__init__()
        C = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.query, self.key, self.value = nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x, mask, output_attentions: bool = False):
        B, T, C = x.shape

        def heads(t):  # (B, T, C) -> (B, H, T, hs)
            return t.reshape(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        p = self.dropout_p if self.training else 0.0
        if not output_attentions:  # the default: any backend, the probabilities never formed
            y = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            return y.transpose(1, 2).reshape(B, T, C)
        probs = attention_weights(q, k, mask)  # (B, H, T, T), returned before dropout (as HF)
        y = (dropout(probs, p, training=True) if p > 0 else probs) @ v
        return y.transpose(1, 2).reshape(B, T, C), probs


class BertResidual(nn.Module):
    """LayerNorm(residual + dropout(dense(x))): the post-norm "Add & Norm" of the paper."""

    def __init__(self, d_in: int, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(d_in, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)  # Hugging Face's name: attention.self.query
        self.output = BertResidual(config.hidden_size, config)

    def forward(self, x, mask, output_attentions: bool = False):
        if not output_attentions:
            return self.output(self.self(x, mask), x)
        y, probs = self.self(x, mask, output_attentions=True)
        return self.output(y, x), probs


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x):
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidual(config.intermediate_size, config)

    def forward(self, x, mask, output_attentions: bool = False):
        """(B, T, C) -> (B, T, C); with ``output_attentions`` also the (B, H, T, T) weights."""
        if not output_attentions:
            a = self.attention(x, mask)
            return self.output(self.intermediate(a), a)
        a, probs = self.attention(x, mask, output_attentions=True)
        return self.output(self.intermediate(a), a), probs


class BertEncoder(nn.Module):
    gradient_checkpointing = False  # the model's gradient_checkpointing_enable() sets it

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, x, mask, output_hidden_states=False, output_attentions=False):
        """The last layer's output (B, T, C); with either flag ``(x, hidden_states, attentions)``,
        the tuples (or None) that ``BertModelOutput`` carries."""
        recompute = self.gradient_checkpointing and is_grad_enabled() and not output_attentions
        hidden, attentions = [x], []
        for layer in self.layer:
            if recompute:  # keep only each layer's input; rerun the layer in the backward
                x = checkpoint(lambda t, layer=layer: layer(t, mask), x)
            elif output_attentions:
                x, probs = layer(x, mask, output_attentions=True)
                attentions.append(probs)
            else:
                x = layer(x, mask)
            if output_hidden_states:  # otherwise no reference is kept: memory as before
                hidden.append(x)
        if not (output_hidden_states or output_attentions):
            return x
        return (
            x,
            tuple(hidden) if output_hidden_states else None,
            tuple(attentions) if output_attentions else None,
        )


class BertPooler(nn.Module):
    """tanh(dense(h_[CLS])): a sentence vector from the first token (for classification)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden):
        return tanh(self.dense(hidden[:, 0]))


def mean_pool(hidden, attention_mask=None):
    """Average of the real tokens' vectors: sum_t m_t h_t / sum_t m_t, (B, T, C) -> (B, C).

    Sentence-transformers' pooling. Padding (m_t = 0) does not count; an all-padding row
    gives zeros, not NaN (its count is clamped to 1).
    """
    if attention_mask is None:
        return hidden.mean(axis=1)
    m = np.asarray(getattr(attention_mask, "data", attention_mask)).astype(hidden.dtype)
    counts = np.maximum(m.sum(axis=1, keepdims=True), 1.0)  # (B, 1)
    return (hidden * m[:, :, None]).sum(axis=1) / counts


def init_bert_weights(model, config: BertConfig) -> None:
    """BERT's init: N(0, initializer_range^2) matrices and embeddings, zero biases, padding row 0."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=config.initializer_range)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            m.weight.data[m.padding_idx] = 0


def as_ids(x, shape=None, fill: int = 0) -> np.ndarray:
    """Token ids (or masks) as an int array; ``None`` becomes ``fill`` of ``shape``."""
    if x is None:
        return np.full(shape, fill, dtype=np.int64)
    return np.asarray(getattr(x, "data", x))


class BertModel(PretrainedMixin, nn.Module):
    config_class = BertConfig

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        init_bert_weights(self, config)

    def forward(
        self,
        input_ids,
        token_type_ids=None,
        attention_mask=None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BertModelOutput:
        input_ids = as_ids(input_ids)
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (B, T), got shape {input_ids.shape}")
        token_type_ids = as_ids(token_type_ids, input_ids.shape, 0)
        attention_mask = as_ids(attention_mask, input_ids.shape, 1)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask {attention_mask.shape} != input_ids {input_ids.shape}"
            )
        # (B, T) 1 = real token -> (B, 1, 1, T) True = may attend: the same keys for every
        # head and every query.
        mask = attention_mask.astype(bool)[:, None, None, :]
        x = self.embeddings(input_ids, token_type_ids)
        hidden_states = attentions = None
        if output_hidden_states or output_attentions:
            x, hidden_states, attentions = self.encoder(
                x, mask, output_hidden_states, output_attentions
            )
        else:
            x = self.encoder(x, mask)
        pooled = None if self.pooler is None else self.pooler(x)
        return BertModelOutput(x, pooled, hidden_states, attentions)


def load_hf_bert(directory: str, cls=BertModel):
    """``(model, tokenizer)`` from a BERT directory (Hugging Face's or numtrans's) with its
    ``vocab.txt``: ``cls.from_pretrained(directory)`` and the WordPiece tokenizer beside it."""
    return cls.from_pretrained(directory), WordPieceTokenizer.from_pretrained(directory)
