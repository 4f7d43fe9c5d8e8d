"""A saved translation model: load it, translate, score it with BLEU, look at its attention.

A model directory holds::

    config.json, model.safetensors     Seq2SeqTransformer.save_pretrained (no pickle)
    src_tokenizer.json                 the English byte-level BPE tokenizer
    tgt_tokenizer.json                 the Chinese character tokenizer
    translation.json                   languages, special tokens, decoding defaults, training setup

Usage::

    tr = Translator.load("runs/translation")
    tr.translate(["I love you."])                    # beam search with the saved defaults
    tr.translate(["I love you."], beam_size=1)       # greedy
    tr.translate_nbest(["I love you."], n_best=3)    # [[(text, score), ...]]
    tr.translate(["I love you."], no_repeat_ngram_size=2, repetition_penalty=1.2)  # no loops
    tr.attention("I love you.").plot("attn.png")     # cross-attention heatmaps

Sentences are decoded in batches of similar source length (sorted, then put back in order).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..generation.beam_search import beam_search, greedy_search
from ..io import atomic_write
from ..metrics import corpus_bleu
from ..models.seq2seq import Seq2SeqTransformer
from ..tokenizers import load as load_tokenizer
from ..tokenizers.base import read_json
from .data import reference_streams

SETTINGS_NAME = "translation.json"
SRC_TOKENIZER_NAME = "src_tokenizer.json"
TGT_TOKENIZER_NAME = "tgt_tokenizer.json"
DEFAULT_SETTINGS = {
    "format_version": 1,
    "src_lang": "en",
    "tgt_lang": "zh",
    "bos_token": "<bos>",
    "eos_token": "<eos>",
    "max_length": 64,  # source tokens (with <eos>) the model reads
    "beam_size": 4,
    "length_penalty": 1.0,  # GNMT alpha (beam_search module docstring)
    "no_repeat_ngram_size": 0,  # repetition control (generation/logits_process.py); 0: off
    "repetition_penalty": 1.0,  # 1.0: off
}
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "WenQuanYi Micro Hei",
             "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Droid Sans Fallback")  # fmt: skip


@dataclass
class AttentionMap:
    """Cross-attention of one translation: ``weights`` (L, H, T, S), row t = the decoder query
    that predicted ``target_tokens[t]``, column s = ``source_tokens[s]``."""

    weights: np.ndarray
    source_tokens: list[str]
    target_tokens: list[str]
    translation: str

    def plot(self, path=None, layer: int = -1, title: str | None = None):
        """Heatmaps of every head of one decoder layer (default: the last); returns the Figure.

        Chinese labels need a CJK font; without one the rows are numbered y1, y2, ... instead."""
        from ..viz import plot_attention

        rows, font = self.target_tokens, cjk_font()
        if font is None:  # number the rows that have CJK characters (U+2E80 and up)
            rows = [f"y{t + 1}" if any(ord(c) > 0x2E7F for c in tok) else tok
                    for t, tok in enumerate(rows)]  # fmt: skip
        L = self.weights.shape[0]
        title = title or f"cross-attention, decoder layer {layer % L + 1} of {L}"
        import matplotlib

        families = ["DejaVu Sans"] + ([font] if font else [])
        with matplotlib.rc_context({"font.family": families}), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing")
            return plot_attention(self.weights[layer], self.source_tokens, rows, path, title)


def cjk_font() -> str | None:
    """The name of an installed font with Chinese glyphs (for matplotlib), or None."""
    from matplotlib import font_manager

    for name in CJK_FONTS:
        try:
            font_manager.findfont(name, fallback_to_default=False)
            return name
        except ValueError:
            continue
    return None


class Translator:
    """A ``Seq2SeqTransformer`` with its two tokenizers and decoding settings."""

    def __init__(self, model, src_tokenizer, tgt_tokenizer, settings: dict | None = None):
        self.model, self.src_tok, self.tgt_tok = model, src_tokenizer, tgt_tokenizer
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.bos_id = tgt_tokenizer.token_to_id(self.settings["bos_token"])
        self.eos_id = tgt_tokenizer.token_to_id(self.settings["eos_token"])
        self.src_eos_id = src_tokenizer.token_to_id(self.settings["eos_token"])
        cfg = model.config
        if (cfg.src_vocab_size, cfg.tgt_vocab_size) != (
            src_tokenizer.vocab_size,
            tgt_tokenizer.vocab_size,
        ):
            raise ValueError(
                f"the model's vocabularies ({cfg.src_vocab_size}, {cfg.tgt_vocab_size}) do not "
                f"match the tokenizers ({src_tokenizer.vocab_size}, {tgt_tokenizer.vocab_size})"
            )

    # ---------------------------------------------------------------- saving and loading
    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.model.save_pretrained(directory)
        self.src_tok.save(os.path.join(directory, SRC_TOKENIZER_NAME))
        self.tgt_tok.save(os.path.join(directory, TGT_TOKENIZER_NAME))
        text = json.dumps(self.settings, indent=2, ensure_ascii=False) + "\n"

        def write(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)

        atomic_write(os.path.join(directory, SETTINGS_NAME), write)

    @classmethod
    def load(cls, directory: str) -> Translator:
        """Raises FileNotFoundError naming a missing directory or file."""
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"no such model directory: {directory!r}")
        settings_path = os.path.join(directory, SETTINGS_NAME)
        if not os.path.isfile(settings_path):
            raise FileNotFoundError(
                f"{directory!r} has no {SETTINGS_NAME}: not a translation model directory "
                "(train one with `numtrans train-translation`)"
            )
        settings = read_json(settings_path, SETTINGS_NAME)
        model = Seq2SeqTransformer.from_pretrained(directory)
        src = load_tokenizer(os.path.join(directory, SRC_TOKENIZER_NAME))
        tgt = load_tokenizer(os.path.join(directory, TGT_TOKENIZER_NAME))
        return cls(model, src, tgt, settings)

    # ---------------------------------------------------------------- translating
    def encode_source(self, text: str) -> list[int]:
        """Source ids: the BPE tokens (cut to ``max_length - 1``) and ``<eos>``."""
        return self.src_tok.encode(text)[: self.settings["max_length"] - 1] + [self.src_eos_id]

    def search(
        self,
        texts: list[str],
        beam_size: int | None = None,
        alpha: float | None = None,
        n_best: int = 1,
        max_new_tokens: int | None = None,
        batch_size: int = 64,
        no_repeat_ngram_size: int | None = None,
        repetition_penalty: float | None = None,
    ):
        """Hypotheses (``beam_search.Hypothesis`` lists, best first) for every text, in order.
        ``beam_size=1`` is greedy decoding; defaults come from ``translation.json``.
        ``no_repeat_ngram_size`` / ``repetition_penalty``: see ``generation.logits_process``."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings (wrap one sentence in a list)")
        beam_size = self.settings["beam_size"] if beam_size is None else beam_size
        alpha = self.settings["length_penalty"] if alpha is None else alpha
        if no_repeat_ngram_size is None:
            no_repeat_ngram_size = self.settings["no_repeat_ngram_size"]
        if repetition_penalty is None:
            repetition_penalty = self.settings["repetition_penalty"]
        ids = [self.encode_source(t) for t in texts]
        order = np.argsort([len(s) for s in ids], kind="stable")
        out = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(ids[i]) for i in chunk)
            src = np.zeros((len(chunk), width), dtype=np.int64)  # <pad> = 0
            for row, i in enumerate(chunk):
                src[row, : len(ids[i])] = ids[i]
            pad = src == 0
            kw = dict(src_padding_mask=pad, max_new_tokens=max_new_tokens,
                      no_repeat_ngram_size=no_repeat_ngram_size,
                      repetition_penalty=repetition_penalty)  # fmt: skip
            if beam_size == 1 and n_best == 1:
                hyps = greedy_search(self.model, src, self.bos_id, self.eos_id, alpha=alpha, **kw)
            else:
                hyps = beam_search(
                    self.model, src, self.bos_id, self.eos_id, beam_size, alpha, n_best, **kw
                )
            for row, i in enumerate(chunk):
                out[i] = hyps[row]
        return out

    def decode(self, tokens: list[int]) -> str:
        return self.tgt_tok.decode(tokens, skip_special_tokens=True)

    def translate(self, texts: list[str], **kwargs) -> list[str]:
        """The best translation of each text (keyword arguments as in :meth:`search`)."""
        return [self.decode(h[0].tokens) for h in self.search(texts, **kwargs)]

    def translate_nbest(self, texts: list[str], n_best: int = 3, **kwargs):
        """``n_best`` (translation, score) pairs per text, best first (scores: module
        ``beam_search``, length-normalised log-probabilities)."""
        beam = max(n_best, kwargs.pop("beam_size", None) or self.settings["beam_size"])
        found = self.search(texts, beam_size=beam, n_best=n_best, **kwargs)
        return [[(self.decode(h.tokens), h.score) for h in hyps] for hyps in found]

    # ---------------------------------------------------------------- inspecting
    def attention(self, text: str, translation: str | None = None, **kwargs) -> AttentionMap:
        """Cross-attention weights of the model translating ``text`` (or forced to produce
        ``translation``)."""
        if translation is None:
            tokens = self.search([text], **kwargs)[0][0].tokens
        else:
            tokens = self.tgt_tok.encode(translation)
        src = np.array([self.encode_source(text)])
        tgt = np.array([[self.bos_id] + tokens])
        weights = self.model.cross_attention_weights(src, tgt)[:, 0]  # (L, H, T, S)
        show = lambda tok, i: tok.decode([i]).strip() or tok.tokens[i]  # noqa: E731
        return AttentionMap(
            weights,
            [show(self.src_tok, i) for i in src[0]],
            [show(self.tgt_tok, i) for i in tokens + [self.eos_id]],
            self.decode(tokens),
        )

    def bleu(self, pairs, limit: int | None = None, **kwargs) -> dict:
        """Corpus BLEU (sacrebleu's, ``tokenize="zh"``) on ``(source, reference)`` pairs; a
        source listed with several references is translated once and scored against all.

        Returns ``{"bleu": BLEUScore, "sources", "hypotheses", "references"}``."""
        sources, streams = reference_streams(pairs)
        if limit is not None:
            sources, streams = sources[:limit], [s[:limit] for s in streams]
        hyps = self.translate(sources, **kwargs)
        score = corpus_bleu(hyps, streams, tokenize="zh")
        return {"bleu": score, "sources": sources, "hypotheses": hyps, "references": streams}
