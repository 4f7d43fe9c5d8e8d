"""SQuAD examples -> model features: question + context windows with labels and offsets.

One *example* is a question about a context paragraph (with, for training, the answer's text and
character start). The model sees

    [CLS] q1 .. qn [SEP] c_i .. c_j [SEP] [PAD] ..        token_type_ids 0 for [CLS] q [SEP],
                                                          1 for the context and its [SEP]

A context longer than the room left, ``max_length - n - 3`` tokens, is cut into overlapping
*windows* (Hugging Face's ``stride``: consecutive windows share ``stride`` tokens), so an answer
near a cut is whole in at least one window. Each window is a *feature*; ``offset_mapping[t]`` is
the ``(start, end)`` character slice of context token t, or ``None`` for question/special tokens.

Labels (training): the first and last token whose characters lie inside the answer,
``start_positions``/``end_positions``; a window that does not contain the whole answer, or an
unanswerable (SQuAD 2.0) question, is labelled 0, the [CLS] token, as Hugging Face does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from .offsets import tokenize_with_offsets


@dataclass
class SquadExample:
    id: str
    question: str
    context: str
    answers: list[dict] = field(default_factory=list)  # {"text", "answer_start"}; [] = none
    title: str = ""

    @property
    def is_impossible(self) -> bool:
        return not self.answers


def read_squad(path: str | os.PathLike) -> list[SquadExample]:
    """The examples of a SQuAD v1.1 or v2.0 JSON file, in file order."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SQuAD file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        articles = data["data"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a SQuAD JSON file ({type(e).__name__}: {e})") from None
    return examples_from_articles(articles)


def examples_from_articles(articles: list[dict]) -> list[SquadExample]:
    out = []
    for article in articles:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers = [] if qa.get("is_impossible") else qa["answers"]
                out.append(
                    SquadExample(qa["id"], qa["question"], para["context"], answers,
                                 article.get("title", ""))
                )  # fmt: skip
    return out


def window_starts(n_tokens: int, room: int, stride: int) -> list[int]:
    """First context token of each window: step ``room - stride``, the last one reaches the end."""
    starts = [0]
    while starts[-1] + room < n_tokens:
        starts.append(starts[-1] + room - stride)
    return starts


def prepare_features(
    examples: list[SquadExample],
    tokenizer,
    max_length: int = 384,
    stride: int = 128,
    training: bool = True,
) -> dict:
    """Features for ``examples``: arrays ``input_ids``, ``token_type_ids``, ``attention_mask``
    (F, max_length), ``example_index`` (F,), lists ``offset_mapping``, and, when ``training``,
    ``start_positions``/``end_positions`` (F,) built from each example's first answer."""
    cls_id, sep_id = (
        tokenizer.token_to_id(tokenizer.cls_token),
        tokenizer.token_to_id(tokenizer.sep_token),
    )
    rows, types, offsets, owner, starts, ends = [], [], [], [], [], []
    for k, ex in enumerate(examples):
        if not ex.context.strip():
            raise ValueError(f"example {ex.id!r}: the context is empty")
        q = [tokenizer.vocab[t] for t in tokenizer.tokenize(ex.question)]
        if not q:
            raise ValueError(f"example {ex.id!r}: the question is empty")
        room = max_length - len(q) - 3
        if room <= stride:
            raise ValueError(
                f"example {ex.id!r}: the question has {len(q)} tokens, too long for max_length "
                f"{max_length} with stride {stride}"
            )
        ctx_tokens, ctx_offsets = tokenize_with_offsets(ex.context, tokenizer)
        if not ctx_tokens:
            raise ValueError(f"example {ex.id!r}: the context has no tokens")
        ctx = [tokenizer.vocab[t] for t in ctx_tokens]
        span = answer_span(ex) if training else None
        for w in window_starts(len(ctx), room, stride):
            piece = ctx[w : w + room]
            ids = [cls_id, *q, sep_id, *piece, sep_id]
            first = len(q) + 2  # index of the window's first context token
            rows.append(ids)
            types.append([0] * first + [1] * (len(piece) + 1))
            offsets.append([None] * first + ctx_offsets[w : w + room] + [None])
            owner.append(k)
            if training:
                s, e = label_window(span, ctx_offsets[w : w + room])
                starts.append(s + first if s is not None else 0)
                ends.append(e + first if e is not None else 0)
    n = len(rows)
    input_ids = np.full((n, max_length), tokenizer.pad_id, dtype=np.int64)
    token_type_ids = np.zeros((n, max_length), dtype=np.int64)
    attention_mask = np.zeros((n, max_length), dtype=np.int64)
    for i, (ids, tt) in enumerate(zip(rows, types)):
        input_ids[i, : len(ids)], token_type_ids[i, : len(ids)] = ids, tt
        attention_mask[i, : len(ids)] = 1
    features = {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "offset_mapping": offsets,
        "example_index": np.array(owner, dtype=np.int64),
    }
    if training:
        features["start_positions"] = np.array(starts, dtype=np.int64)
        features["end_positions"] = np.array(ends, dtype=np.int64)
    return features


def answer_span(ex: SquadExample) -> tuple[int, int] | None:
    """Character ``[start, end)`` of the first answer, checked against the context."""
    if ex.is_impossible:
        return None
    a = ex.answers[0]
    start = int(a["answer_start"])
    end = start + len(a["text"])
    if ex.context[start:end] != a["text"]:
        raise ValueError(
            f"example {ex.id!r}: answer {a['text']!r} is not at character {start} of the context"
        )
    return start, end


def label_window(span, window_offsets) -> tuple[int | None, int | None]:
    """Token indices (within the window) of the answer's first and last token, or Nones."""
    if span is None or not window_offsets:
        return None, None
    a, b = span
    if window_offsets[0][0] > a or window_offsets[-1][1] < b:
        return None, None  # the answer is not wholly inside this window
    s = next(i for i, (_, end) in enumerate(window_offsets) if end > a)
    e = max(i for i, (start, _) in enumerate(window_offsets) if start < b)
    return s, e
