"""A multi-task instruction set from the bundled corpora, training splits only.

* translate English -> Chinese: Tatoeba pairs, the ``train`` part of
  ``translation.split_pairs`` (its valid and test sentences never appear);
* sentiment: UCI sentences, the training part of ``LabeledData.split(val_fraction, seed)``
  (the same seeded split ``numtrans finetune`` holds out).

Each example is a user/assistant conversation; the instruction is drawn from several phrasings
so the model learns the task, not one sentence. ``max_per_task`` keeps a seeded random subset
of each task (the Tatoeba file is sorted by length: its first rows are all "Hi."-short).

:func:`read_conversations` reads your own set instead: JSONL, one conversation (a JSON list of
role/content messages) a line.
"""

from __future__ import annotations

import json

import numpy as np

from ..data.corpus import load_corpus
from ..finetune.data import read_labeled
from ..translation.data import split_pairs
from .template import check_messages

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
    for i in rng.permutation(len(train_pairs))[:max_per_task]:
        en, zh = train_pairs[i]
        out.append(_chat(TRANSLATE[rng.integers(len(TRANSLATE))].format(x=en), zh))
    keep = rng.permutation(len(sent_train.texts))[:max_per_task]
    for text, label in ((sent_train.texts[i], sent_train.labels[i]) for i in keep):
        out.append(
            _chat(SENTIMENT[rng.integers(len(SENTIMENT))].format(x=text), LABELS[str(label)])
        )
    rng.shuffle(out)
    return out


def read_conversations(path: str) -> list[list[dict]]:
    """Conversations from a JSONL file, one JSON list of messages a line; each needs an
    assistant turn (the only tokens SFT trains on). Errors name the line."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            conv = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {n}: not JSON ({exc.msg})") from None
        try:
            check_messages(conv)
        except ValueError as exc:
            raise ValueError(f"{path}, line {n}: {exc}") from None
        if not any(m["role"] == "assistant" for m in conv):
            raise ValueError(f"{path}, line {n}: no assistant turn to train on")
        out.append(conv)
    if not out:
        raise ValueError(f"{path}: no conversations")
    return out
