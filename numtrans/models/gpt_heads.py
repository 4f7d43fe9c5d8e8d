"""``GPTForSequenceClassification``: a GPT body with a classification (or regression) head.

A causal model's token t has seen tokens 0..t only, so the one vector that has read the whole
text is the *last real* token's. That vector is the sentence representation::

    h = ln_f(blocks(wte(ids) + wpe(0..T-1)))          (B, T, C)    GPT's body, no lm_head
    last[b] = index of the last real token of row b    (B,)         from attention_mask (or pad id)
    logits = score(h[b, last[b]])                      (B, num_labels)   score: Linear, no bias

as in Hugging Face's ``GPT2ForSequenceClassification`` (same names: ``transformer.*``,
``score.weight``). Loss: cross-entropy, or mean squared error for regression.

Padding must be on the right. GPT's attention has no padding mask, only the causal one; with
right padding, real tokens never see the pads after them, so ``h`` at the last real token is
exactly what the unpadded sentence gives. Left padding would let real tokens attend to pads, so
it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..functional.losses import cross_entropy, mse_loss
from .bert_heads import ModelOutput
from .gpt import GPT, GPTConfig
from .pretrained import PretrainedMixin


@dataclass
class GPTClassificationConfig(GPTConfig):
    num_labels: int = 2  # 1 means regression
    problem_type: str | None = None  # None, "regression" or "single_label_classification"
    pad_token_id: int | None = None  # finds the last real token when no attention_mask is given


def last_token_index(input_ids: np.ndarray, attention_mask=None, pad_token_id=None) -> np.ndarray:
    """(B,) index of each row's last real token; raises on left padding or an empty row."""
    if attention_mask is not None:
        real = np.asarray(getattr(attention_mask, "data", attention_mask)).astype(bool)
    elif pad_token_id is not None:
        real = input_ids != pad_token_id
    else:
        real = np.ones(input_ids.shape, dtype=bool)
    if real.shape != input_ids.shape:
        raise ValueError(f"attention_mask {real.shape} != input_ids {input_ids.shape}")
    lengths = real.sum(axis=1)
    if np.any(lengths == 0):
        raise ValueError(f"row {int(np.argmin(lengths))} has no real token")
    if np.any(real != (np.arange(real.shape[1]) < lengths[:, None])):
        raise ValueError("GPT classification needs right padding (real tokens first, then pads)")
    return lengths - 1


class GPTForSequenceClassification(PretrainedMixin, nn.Module):
    config_class = GPTClassificationConfig

    def __init__(self, config: GPTClassificationConfig):
        super().__init__()
        if config.problem_type not in (None, "regression", "single_label_classification"):
            raise ValueError(f"unsupported problem_type {config.problem_type!r}")
        self.config = config
        body = GPT(config)  # its lm_head is not kept: the head here is `score`
        self.transformer = body.transformer
        self.rotary = body.rotary
        self.score = nn.Linear(config.n_embd, config.num_labels, bias=False)
        nn.init.normal_(self.score.weight, std=0.02)

    @classmethod
    def from_gpt(cls, gpt, num_labels: int = 2, **kwargs) -> GPTForSequenceClassification:
        """A classifier whose body is a copy of ``gpt``'s (a ``GPT`` or a directory holding one)."""
        if isinstance(gpt, str):
            gpt = GPT.from_pretrained(gpt)
        values = {f: getattr(gpt.config, f) for f in GPTConfig.__dataclass_fields__}
        model = cls(GPTClassificationConfig(**values, num_labels=num_labels, **kwargs))
        body = {k: v for k, v in gpt.state_dict().items() if k.startswith("transformer.")}
        model.to(gpt.transformer["wte"].weight.dtype)
        model.load_state_dict(body, strict=False)  # score.weight stays freshly initialised
        return model

    @property
    def is_regression(self) -> bool:
        kind = self.config.problem_type
        return kind == "regression" or (kind is None and self.config.num_labels == 1)

    def hidden_states(self, input_ids):
        """GPT's body: (B, T) ids -> (B, T, C) after the final LayerNorm."""
        B, T = input_ids.shape
        if T > self.config.block_size:
            raise ValueError(
                f"sequence of {T} tokens is longer than block_size {self.config.block_size}"
            )
        x = self.transformer["wte"](input_ids)
        if self.config.pos == "learned":
            x = x + self.transformer["wpe"](np.arange(T))
        x = self.transformer["drop"](x)
        for block in self.transformer["h"]:
            x = block(x, self.rotary)
        return self.transformer["ln_f"](x)

    def forward(self, input_ids, attention_mask=None, labels=None) -> ModelOutput:
        input_ids = np.asarray(getattr(input_ids, "data", input_ids))
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (B, T), got shape {input_ids.shape}")
        last = last_token_index(input_ids, attention_mask, self.config.pad_token_id)
        h = self.hidden_states(input_ids)  # (B, T, C)
        logits = self.score(h[np.arange(len(last)), last])  # (B, num_labels)
        loss = None
        if labels is not None:
            labels = np.asarray(getattr(labels, "data", labels))
            if self.is_regression:
                loss = mse_loss(logits, labels.astype(logits.dtype).reshape(logits.shape))
            else:
                loss = cross_entropy(logits, labels.reshape(-1))
        return ModelOutput(loss=loss, logits=logits, hidden_states=h)
