"""Abstractive summaries: an encoder-decoder that *writes* the summary (here a Chinese title).

The model is the translation model (``Seq2SeqTransformer``), with one character vocabulary on
both sides (source and target are both Chinese; ``share_embeddings`` and ``tie_generator``
make the encoder's, the decoder's and the output layer's embeddings one matrix, as in BART).
Decoding is the shared beam search (``numtrans.generation.beam_search``): the GNMT length
penalty ``lp(y) = ((5 + |y|) / 6) ** alpha`` divides the sum of log-probabilities, and
``no_repeat_ngram_size`` forbids any n-gram from appearing twice (a title never needs that).

A model directory is a :class:`~numtrans.translation.Translator` directory whose
``translation.json`` has ``"task": "summarization"`` (so that a translator is not taken for a
summariser, nor the other way round)::

    s = AbstractiveSummarizer.load("runs/csl-title")
    s.summarize(["采用修正的Rodrigues参数(MRP),建立了飞行器姿态控制系统的数学模型；..."])
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..tokenizers import CharTokenizer
from ..tokenizers.base import read_json
from ..translation.translate import SETTINGS_NAME, Translator

TASK = "summarization"
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>", "<mask>"]  # ids 0..4
DECODING = {"beam_size": 4, "length_penalty": 1.0, "no_repeat_ngram_size": 3}


def char_tokenizer(texts: Iterable[str], min_freq: int = 1) -> CharTokenizer:
    """One token per character seen at least ``min_freq`` times, after ``SPECIALS``; rarer
    characters become ``<unk>``. The characters are sorted (by code point): the same texts
    give the same ids."""
    if min_freq < 1:
        raise ValueError(f"min_freq must be >= 1, got {min_freq}")
    counts: dict[str, int] = {}
    for text in texts:
        for c in text:
            counts[c] = counts.get(c, 0) + 1
    return CharTokenizer(sorted(c for c, n in counts.items() if n >= min_freq), SPECIALS)


def is_summarizer_dir(directory: str) -> bool:
    """Whether ``directory`` holds a model saved by :meth:`AbstractiveSummarizer.save`."""
    path = os.path.join(directory, SETTINGS_NAME)
    return os.path.isfile(path) and read_json(path, SETTINGS_NAME).get("task") == TASK


class AbstractiveSummarizer:
    """A trained ``Seq2SeqTransformer`` and its character tokenizer: texts in, summaries out."""

    def __init__(self, model, tokenizer, settings: dict | None = None):
        settings = {"src_lang": "zh", "tgt_lang": "zh", **DECODING, **(settings or {})}
        settings["task"] = TASK
        self.translator = Translator(model, tokenizer, tokenizer, settings)

    @property
    def model(self):
        return self.translator.model

    @property
    def tokenizer(self):
        return self.translator.tgt_tok

    @property
    def settings(self) -> dict:
        return self.translator.settings

    def save(self, directory: str) -> None:
        self.translator.save(directory)

    @classmethod
    def load(cls, directory: str) -> AbstractiveSummarizer:
        """Raises FileNotFoundError for a missing directory, ValueError for another model's."""
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"no such model directory: {directory!r}")
        if not is_summarizer_dir(directory):
            raise ValueError(
                f"{directory!r} is not an abstractive summarisation model (no {SETTINGS_NAME} "
                f'with "task": "{TASK}"); train one with benchmarks/summarization.py or '
                "numtrans.recipes.summarization"
            )
        t = Translator.load(directory)
        return cls(t.model, t.tgt_tok, t.settings)

    def summarize(self, texts: list[str], **kwargs) -> list[str]:
        """The best summary of each text: beam search with the saved defaults; keyword
        arguments (``beam_size``, ``alpha`` = length penalty, ``no_repeat_ngram_size``,
        ``repetition_penalty``, ``max_new_tokens``) as in ``Translator.search``."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings (wrap one text in a list)")
        for n, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"text {n} is empty: nothing to summarise")
        kwargs.setdefault("max_new_tokens", self.settings.get("max_new_tokens", 48))
        return self.translator.translate(list(texts), **kwargs)
