"""A multi-task instruction set from the bundled corpora, training splits only.

* translate English -> Chinese: Tatoeba pairs, the ``train`` part of
  ``translation.split_pairs`` (its valid and test sentences never appear);
* sentiment: UCI sentences, the training part of ``LabeledData.split(val_fraction, seed)``
  (the same seeded split ``numtrans finetune`` holds out).

Each example is a user/assistant conversation; the instruction is drawn from several phrasings
so the model learns the task, not one sentence.
"""

from __future__ import annotations

import numpy as np

from ..data.corpus import load_corpus
from ..finetune.data import read_labeled
from ..translation.data import split_pairs

TRANSLATE = (
    "Translate into Chinese: {x}",
    "How do you say this in Chinese? {x}",
    "English to Chinese, please:\n{x}",
    'Give the Chinese translation of "{x}"',
)
SENTIMENT = (
    "Is this review positive or negative? {x}",
    "Review: {x}\nSentiment (positive/negative):",
    "Say whether the following opinion is positive or negative.\n{x}",
)
LABELS = {"1": "positive", "0": "negative"}


def _chat(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def instruction_set(seed: int = 0, max_per_task: int | None = None, val_fraction: float = 0.1):
    """List of conversations (user, assistant), tasks interleaved by a seeded shuffle."""
    rng = np.random.default_rng(seed)
    train_pairs, _, _ = split_pairs(load_corpus("tatoeba_cmn_eng"), seed=seed)
    sent_train, _ = read_labeled("uci_sentiment").split(val_fraction, seed)
    out = []
    for en, zh in train_pairs[:max_per_task]:
        out.append(_chat(TRANSLATE[rng.integers(len(TRANSLATE))].format(x=en), zh))
    texts, labels = sent_train.texts[:max_per_task], sent_train.labels[:max_per_task]
    for text, label in zip(texts, labels):
        out.append(
            _chat(SENTIMENT[rng.integers(len(SENTIMENT))].format(x=text), LABELS[str(label)])
        )
    rng.shuffle(out)
    return out
