"""Task heads on top of ``BertModel`` (Hugging Face's classes and parameter names).

``BertForMaskedLM``: pre-training. About 15% of input tokens are replaced (mostly by [MASK]); the
model predicts the originals from both sides of the context:

    h = bert(ids).last_hidden_state                       (B, T, H)
    logits = LayerNorm(GELU(dense(h))) @ E^T + bias       (B, T, vocab)   E: the word embeddings
    loss = cross_entropy(logits, labels), labels -100 where nothing was masked

The decoder reuses the input embedding matrix (weight tying), as in BERT.

``BertForSequenceClassification``: logits = classifier(dropout(s)), (B, num_labels), where the
sentence vector s (B, H) is chosen by ``config.classifier_pooling``:

    "pooled"  tanh(dense(h[:, 0]))              BERT's pooler on [CLS] (Hugging Face's default)
    "cls"     h[:, 0]                           the raw [CLS] vector, no extra layer
    "mean"    sum_t m_t h_t / sum_t m_t         average of the real tokens (sentence-transformers)

Loss: cross-entropy on class ids, or mean squared error for regression (``num_labels == 1`` or
``problem_type="regression"``; the logits are then (B, 1) and the labels floats).

``BertForQuestionAnswering``: extractive QA. ``qa_outputs`` (H -> 2) gives every token a start
and an end score, (B, T) each; the loss is the mean of the two cross-entropies over positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..functional.losses import cross_entropy, mse_loss
from .bert import BertConfig, BertModel, activation, init_bert_weights, mean_pool
from .pretrained import PretrainedMixin


@dataclass
class ModelOutput:
    loss: object = None  # scalar Tensor when labels were given
    logits: object = None
    hidden_states: object = None  # the encoder's last_hidden_state


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.bias = nn.Parameter(np.zeros(config.vocab_size, dtype=word_embeddings.weight.dtype))
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.decoder.weight = word_embeddings.weight  # tied to the input embeddings
        self.decoder.bias = self.bias  # one bias, two names (as in Hugging Face)

    def forward(self, x):
        return self.decoder(self.transform(x))


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)

    def forward(self, x):
        return self.predictions(x)


class BertForMaskedLM(PretrainedMixin, nn.Module):
    config_class = BertConfig

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config, self.bert.embeddings.word_embeddings)
        # Not init_bert_weights(self.cls): decoder.weight *is* the (already initialised) word
        # embedding matrix, and re-drawing it would also overwrite the zero padding row.
        init_bert_weights(self.cls.predictions.transform, config)
        nn.init.zeros_(self.cls.predictions.bias)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        hidden = self.bert(input_ids, token_type_ids, attention_mask).last_hidden_state
        logits = self.cls(hidden)  # (B, T, vocab)
        loss = None
        if labels is not None:
            labels = np.asarray(getattr(labels, "data", labels))
            loss = cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        return ModelOutput(loss=loss, logits=logits, hidden_states=hidden)


class BertForSequenceClassification(PretrainedMixin, nn.Module):
    config_class = BertConfig

    def __init__(self, config: BertConfig):
        super().__init__()
        if config.problem_type not in (None, "regression", "single_label_classification"):
            raise ValueError(f"unsupported problem_type {config.problem_type!r}")
        self.config = config
        self.num_labels = config.num_labels
        pooled = config.classifier_pooling == "pooled"  # only then is the pooler used
        self.bert = BertModel(config, add_pooling_layer=pooled)
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_bert_weights(self.classifier, config)

    @property
    def is_regression(self) -> bool:
        kind = self.config.problem_type
        return kind == "regression" or (kind is None and self.num_labels == 1)

    def pool(self, out, attention_mask=None):
        """The (B, H) sentence vector the classifier reads (see the module docstring)."""
        kind = self.config.classifier_pooling
        if kind == "pooled":
            return out.pooler_output
        if kind == "cls":
            return out.last_hidden_state[:, 0]
        return mean_pool(out.last_hidden_state, attention_mask)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None):
        out = self.bert(input_ids, token_type_ids, attention_mask)
        logits = self.classifier(self.dropout(self.pool(out, attention_mask)))  # (B, num_labels)
        loss = None
        if labels is not None:
            labels = np.asarray(getattr(labels, "data", labels))
            if self.is_regression:
                loss = mse_loss(logits, labels.astype(logits.dtype).reshape(logits.shape))
            else:
                loss = cross_entropy(logits, labels.reshape(-1))
        return ModelOutput(loss=loss, logits=logits, hidden_states=out.last_hidden_state)


@dataclass
class QuestionAnsweringModelOutput:
    loss: object = None  # scalar Tensor when start/end positions were given
    start_logits: object = None  # (B, T)
    end_logits: object = None  # (B, T)
    hidden_states: object = None  # the encoder's last_hidden_state


class BertForQuestionAnswering(PretrainedMixin, nn.Module):
    """Extractive QA (SQuAD): a start and an end score for every token.

        h = bert(ids).last_hidden_state                  (B, T, H)
        start_logits, end_logits = qa_outputs(h).unbind(-1)   each (B, T), qa_outputs: H -> 2
        loss = (CE(start_logits, start_positions) + CE(end_logits, end_positions)) / 2

    As in Hugging Face, positions outside the sequence are clamped to T and ignored; a window
    without the answer is labelled 0, the [CLS] token ("no answer here").
    """

    config_class = BertConfig

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        init_bert_weights(self.qa_outputs, config)

    def forward(
        self,
        input_ids,
        token_type_ids=None,
        attention_mask=None,
        start_positions=None,
        end_positions=None,
    ):
        hidden = self.bert(input_ids, token_type_ids, attention_mask).last_hidden_state
        logits = self.qa_outputs(hidden)  # (B, T, 2)
        start_logits, end_logits = logits[:, :, 0], logits[:, :, 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            T = start_logits.shape[1]

            def targets(p):  # out-of-range positions -> T, which the loss ignores
                p = np.asarray(getattr(p, "data", p)).reshape(-1)
                return np.clip(p, 0, T)

            s, e = targets(start_positions), targets(end_positions)
            loss = (
                cross_entropy(start_logits, s, ignore_index=T)
                + cross_entropy(end_logits, e, ignore_index=T)
            ) / 2
        return QuestionAnsweringModelOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, hidden_states=hidden
        )
