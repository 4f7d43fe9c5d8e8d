"""WordPiece (BERT's tokenizer): basic tokenisation, then greedy longest-match word pieces.

Each word from :func:`.bert_basic.basic_tokenize` is cut left to right into the longest pieces
found in the vocabulary; pieces after the first carry the ``##`` prefix::

    "unaffable" -> ["un", "##aff", "##able"]        (if those three are in vocab.txt)

A word with no possible cut, or longer than 100 characters, becomes ``[UNK]`` as a whole.
Model inputs add ``[CLS]`` and ``[SEP]``, and ``token_type_ids`` mark the two sentences::

    [CLS] a1 a2 [SEP] b1 b2 b3 [SEP]
      0   0  0    0   1  1  1    1

The vocabulary is BERT's ``vocab.txt``: one token a line, the line number is the id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

import numpy as np

from ..io import atomic_write_text
from .base import Tokenizer, pad_batch, read_json
from .bert_basic import basic_tokenize
from .wordpiece_train import train_wordpiece

BERT_SPECIALS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}


class WordPieceTokenizer(Tokenizer):
    """BERT tokenizer. ``tokens`` is the vocabulary in id order (``vocab.txt`` lines)."""

    def __init__(
        self,
        tokens: Sequence[str],
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        max_input_chars_per_word: int = 100,
        special_tokens: dict[str, str] | None = None,
    ):
        names = {**BERT_SPECIALS, **(special_tokens or {})}
        for role, tok in names.items():
            if tok not in tokens:
                raise ValueError(f"the vocabulary has no {role} token {tok!r}")
        super().__init__(tokens, list(names.values()))
        self.roles = names
        self.pad_token, self.unk_token = names["pad"], names["unk"]
        self.cls_token, self.sep_token, self.mask_token = names["cls"], names["sep"], names["mask"]
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.max_input_chars_per_word = max_input_chars_per_word

    # ---- reading BERT files -------------------------------------------------------------
    @classmethod
    def from_vocab_file(cls, path: str | os.PathLike, **kwargs) -> WordPieceTokenizer:
        """Read a ``vocab.txt`` (UTF-8, one token a line)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"WordPiece vocab file not found: {path}")
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().split("\n")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: vocab file is not valid UTF-8 ({e.reason})") from None
        if lines and lines[-1] == "":
            lines.pop()
        tokens = [line.rstrip("\r") for line in lines]
        for n, t in enumerate(tokens, start=1):
            if not t or t != t.strip():
                raise ValueError(f"{path}, line {n}: empty token or surrounding whitespace {t!r}")
        seen: dict[str, int] = {}
        for n, t in enumerate(tokens, start=1):
            if t in seen:
                raise ValueError(f"{path}, line {n}: token {t!r} repeats line {seen[t]}")
            seen[t] = n
        return cls(tokens, **kwargs)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **kwargs) -> WordPieceTokenizer:
        """``vocab.txt`` plus, when present, ``do_lower_case`` etc. from tokenizer_config.json."""
        config_path = os.path.join(directory, "tokenizer_config.json")
        if os.path.isfile(config_path):
            config = read_json(config_path, "tokenizer_config.json")
            for key in ("do_lower_case", "strip_accents", "tokenize_chinese_chars"):
                if key in config and key not in kwargs:
                    kwargs[key] = config[key]
            specials = {r: config[f"{r}_token"] for r in BERT_SPECIALS if f"{r}_token" in config}
            specials = {r: t["content"] if isinstance(t, dict) else t for r, t in specials.items()}
            kwargs.setdefault("special_tokens", specials)
        return cls.from_vocab_file(os.path.join(directory, "vocab.txt"), **kwargs)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``vocab.txt`` and a ``tokenizer_config.json`` that BERT tooling understands."""
        os.makedirs(directory, exist_ok=True)
        atomic_write_text(
            os.path.join(directory, "vocab.txt"), "".join(t + "\n" for t in self.tokens)
        )
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            **{f"{r}_token": t for r, t in self.roles.items()},
        }
        atomic_write_text(
            os.path.join(directory, "tokenizer_config.json"), json.dumps(config, indent=1)
        )

    # ---- training -----------------------------------------------------------------------
    @classmethod
    def train(cls, texts: str | Iterable[str], vocab_size: int, **kwargs) -> WordPieceTokenizer:
        """Learn a vocabulary from a corpus (see :mod:`.wordpiece_train`).

        Keyword arguments: ``do_lower_case=True``, ``min_frequency=2``,
        ``score="likelihood"`` (or ``"pmi"``), ``max_input_chars_per_word=100``.
        """
        lowercase = kwargs.pop("do_lower_case", True)
        tokens = train_wordpiece(texts, vocab_size, lowercase=lowercase, **kwargs)
        return cls(tokens, do_lower_case=lowercase)

    # ---- tokenizing ---------------------------------------------------------------------
    def basic_tokenize(self, text: str) -> list[str]:
        return basic_tokenize(
            text, self.do_lower_case, self.strip_accents, self.tokenize_chinese_chars
        )

    def word_pieces(self, word: str) -> list[str]:
        """Greedy longest-match-first: ``"playing"`` -> ``["play", "##ing"]``, or ``[UNK]``."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:  # not even one character matched
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        return [p for w in self.basic_tokenize(text) for p in self.word_pieces(w)]

    def encode(
        self, text: str, pair: str | None = None, add_special_tokens: bool = True
    ) -> list[int]:
        """Ids of ``[CLS] text [SEP]`` (and ``pair [SEP]``), or bare pieces."""
        return self._encode_pair(text, pair, add_special_tokens, None)[0]

    def _encode_pair(self, text, pair, add_special, max_length):
        a = [self.vocab[t] for t in self.tokenize(text)]
        b = None if pair is None else [self.vocab[t] for t in self.tokenize(pair)]
        if max_length is not None:
            n_special = (2 if b is None else 3) if add_special else 0
            a, b = truncate_longest_first(a, b, max_length - n_special)
        if not add_special:
            ids = a + (b or [])
            return ids, [0] * len(a) + [1] * len(b or [])
        cls_id, sep_id = self.vocab[self.cls_token], self.vocab[self.sep_token]
        ids = [cls_id] + a + [sep_id]
        types = [0] * len(ids)
        if b is not None:
            ids += b + [sep_id]
            types += [1] * (len(b) + 1)
        return ids, types

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        padding: bool | str = False,
        truncation: bool = False,
        max_length: int | None = None,
        add_special_tokens: bool = True,
    ) -> dict[str, np.ndarray]:
        """BERT model inputs: ``input_ids``, ``token_type_ids``, ``attention_mask``.

        One string gives 1-D arrays ``(T,)``; a list gives ``(B, T)`` arrays, which need
        equal lengths or ``padding`` (``True``/``"longest"`` or ``"max_length"``).
        ``truncation=True`` with ``max_length`` cuts the longer sentence of a pair first.
        """
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        pairs = [text_pair] if single else text_pair
        if pairs is None:
            pairs = [None] * len(texts)
        if len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} text pairs")
        if truncation and max_length is None:
            raise ValueError("truncation=True needs max_length")
        limit = max_length if truncation else None
        encoded = [self._encode_pair(t, p, add_special_tokens, limit) for t, p in zip(texts, pairs)]
        out = pad_batch([e[0] for e in encoded], self.pad_id, padding, max_length)
        out["token_type_ids"] = pad_batch([e[1] for e in encoded], 0, padding, max_length)[
            "input_ids"
        ]
        out = {k: out[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
        return {k: v[0] for k, v in out.items()} if single else out

    def encode_batch(
        self, texts, padding="longest", max_length=None, truncation=False, pad_id=None
    ):
        """``self(texts, padding=...)``: input ids, token type ids and attention mask."""
        return self(texts, padding=padding, truncation=truncation, max_length=max_length)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Join pieces: ``["[CLS]", "un", "##aff", "##able"]`` -> ``"[CLS] unaffable"``."""
        ids = self._check_ids(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.special_ids]
        return " ".join(self.tokens[i] for i in ids).replace(" ##", "").strip()

    # ---- persistence --------------------------------------------------------------------
    def _config(self) -> dict:
        return {
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "roles": self.roles,
        }

    @classmethod
    def from_dict(cls, d: dict) -> WordPieceTokenizer:
        return cls(
            d["tokens"],
            d.get("do_lower_case", True),
            d.get("strip_accents"),
            d.get("tokenize_chinese_chars", True),
            d.get("max_input_chars_per_word", 100),
            d.get("roles"),
        )


def truncate_longest_first(a: list[int], b: list[int] | None, budget: int):
    """Cut ``a`` (and ``b``) to ``budget`` tokens in all, as the ``tokenizers`` library does.

    Single sentence: keep the first ``budget``. Pair with lengths ``n1 <= n2``: if the shorter
    fits, the longer gets the rest; if both are too long, they share ``budget`` half and half
    (the extra odd token to the longer one).
    """
    if budget < 0:
        raise ValueError("max_length is too small to hold the special tokens")
    if b is None:
        return a[:budget], None
    n1, n2 = len(a), len(b)
    if n1 + n2 <= budget:
        return a, b
    swap = n1 > n2
    if swap:
        n1, n2 = n2, n1
    n2 = n1 if n1 > budget else max(n1, budget - n1)
    if n1 + n2 > budget:
        n1 = budget // 2
        n2 = n1 + budget % 2
    if swap:
        n1, n2 = n2, n1
    return a[:n1], b[:n2]
