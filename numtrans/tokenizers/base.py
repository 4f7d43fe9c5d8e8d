"""The interface every numtrans tokenizer shares.

A tokenizer maps text to a list of integer ids and back::

    ids = tok.encode("hello")        # list[int], each 0 <= id < tok.vocab_size
    text = tok.decode(ids)           # str
    batch = tok.encode_batch(["hi", "hello"])
    batch["input_ids"]               # (B, T) int64, right-padded with tok.pad_id
    batch["attention_mask"]          # (B, T) int64, 1 = real token, 0 = padding

The vocabulary is a list of token strings: the token with id ``i`` is ``tokens[i]``.
Special tokens (``<pad>``, ``[CLS]``, ``<|endoftext|>``, ...) are ordinary entries of that list
that the subclass never splits; ``special_tokens`` names them and ``token_to_id`` finds any token.

Every tokenizer saves to one JSON file with a ``"type"`` field; :func:`load` restores any of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

import numpy as np

FORMAT_VERSION = 1
_REGISTRY: dict[str, type[Tokenizer]] = {}


class Tokenizer:
    """Base class: a vocabulary (``tokens``), special tokens, and the shared helpers.

    Subclasses implement ``encode``, ``decode`` and ``_config`` (their extra JSON fields), and
    register themselves by subclassing (``__init_subclass__``).
    """

    #: Which special token plays which role; subclasses set the defaults.
    pad_token: str | None = None
    unk_token: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self, tokens: Sequence[str], special_tokens: Sequence[str] = ()):
        self._set_vocab(tokens, special_tokens)

    def _set_vocab(self, tokens: Sequence[str], special_tokens: Sequence[str]) -> None:
        self.tokens: list[str] = list(tokens)
        self.vocab: dict[str, int] = {}
        for i, t in enumerate(self.tokens):
            if t in self.vocab:
                raise ValueError(f"duplicate token {t!r} at ids {self.vocab[t]} and {i}")
            self.vocab[t] = i
        for t in special_tokens:
            if t not in self.vocab:
                raise ValueError(f"special token {t!r} is not in the vocabulary")
        self.special_tokens: list[str] = list(special_tokens)
        self.special_ids: set[int] = {self.vocab[t] for t in special_tokens}

    # ---- vocabulary ---------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def token_to_id(self, token: str) -> int:
        """The id of ``token``; a clear ``KeyError`` if the vocabulary does not have it."""
        try:
            return self.vocab[token]
        except KeyError:
            raise KeyError(f"token {token!r} is not in the vocabulary") from None

    def special_id(self, token: str) -> int:
        """The id of a registered special token; ``KeyError`` naming the known ones otherwise."""
        if token not in self.special_tokens:
            raise KeyError(f"unknown special token {token!r}; registered: {self.special_tokens}")
        return self.vocab[token]

    def id_to_token(self, i: int) -> str:
        return self.tokens[self._check_ids([i])[0]]

    @property
    def pad_id(self) -> int | None:
        return None if self.pad_token is None else self.vocab[self.pad_token]

    @property
    def unk_id(self) -> int | None:
        return None if self.unk_token is None else self.vocab[self.unk_token]

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        """Validate ids for decode: integers with 0 <= id < vocab_size."""
        arr = np.asarray(list(ids))
        if arr.ndim > 1:
            raise ValueError(f"decode takes one sequence of ids, got an array of shape {arr.shape}")
        out = []
        for pos, i in enumerate(arr.tolist()):
            if isinstance(i, bool) or not isinstance(i, int):
                raise TypeError(f"token id at position {pos} is {i!r}, expected an integer")
            if not 0 <= i < len(self.tokens):
                raise ValueError(
                    f"token id {i} at position {pos} is out of range for a vocabulary of "
                    f"size {len(self.tokens)}"
                )
            out.append(i)
        return out

    # ---- the interface ------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        raise NotImplementedError

    def encode_batch(
        self,
        texts: Sequence[str],
        padding: bool | str = "longest",
        max_length: int | None = None,
        truncation: bool = False,
        pad_id: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Encode several texts and pad them into one ``(B, T)`` int64 array.

        ``padding="longest"`` (or True) pads to the longest sequence, ``"max_length"`` to
        ``max_length``. ``truncation=True`` cuts every sequence to ``max_length`` first.
        Returns ``{"input_ids": (B, T), "attention_mask": (B, T)}`` (mask 1 on real tokens).
        """
        seqs = [self.encode(t) for t in texts]
        return pad_batch(seqs, self._resolve_pad(pad_id), padding, max_length, truncation)

    def _resolve_pad(self, pad_id: int | None) -> int:
        if pad_id is not None:
            return int(pad_id)
        if self.pad_id is None:
            raise ValueError(
                f"{type(self).__name__} has no pad token: register one (e.g. '<pad>') "
                "or pass pad_id= to encode_batch"
            )
        return self.pad_id

    # ---- persistence --------------------------------------------------------------------
    def _config(self) -> dict:
        """Subclass-specific JSON fields (besides type, tokens, special tokens)."""
        return {}

    def to_dict(self) -> dict:
        return {
            "type": type(self).__name__,
            "format_version": FORMAT_VERSION,
            "tokens": self.tokens,
            "special_tokens": self.special_tokens,
            **self._config(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Tokenizer:
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to one UTF-8 JSON file (atomically: temp file, then rename)."""
        path = os.fspath(path)
        tmp = path + ".tmp"
        # ensure_ascii keeps lone surrogates (legal in a Python str) representable in the file.
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=True, indent=1)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        tok = load(path)
        if not isinstance(tok, cls):
            raise TypeError(f"{path} holds a {type(tok).__name__}, not a {cls.__name__}")
        return tok

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def load(path: str | os.PathLike) -> Tokenizer:
    """Load any tokenizer saved by ``Tokenizer.save``, dispatching on its ``"type"`` field."""
    d = read_json(path, "tokenizer file")
    if not isinstance(d, dict) or "type" not in d:
        raise ValueError(f"{path} is not a numtrans tokenizer file (no 'type' field)")
    if d["type"] not in _REGISTRY:
        raise ValueError(
            f"{path}: unknown tokenizer type {d['type']!r}; known: {sorted(_REGISTRY)}"
        )
    for key in ("tokens", "special_tokens"):
        if not isinstance(d.get(key), list):
            raise ValueError(f"{path}: malformed tokenizer file, {key!r} must be a list")
    return _REGISTRY[d["type"]].from_dict(d)


def read_json(path: str | os.PathLike, what: str):
    """Read a JSON file with errors that name the file and the problem."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON in {what} (line {e.lineno}: {e.msg})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: {what} is not valid UTF-8 ({e.reason})") from None


def pad_batch(
    seqs: Sequence[Sequence[int]],
    pad_id: int,
    padding: bool | str = "longest",
    max_length: int | None = None,
    truncation: bool = False,
) -> dict[str, np.ndarray]:
    """Right-pad id lists into ``input_ids`` and ``attention_mask``, both ``(B, T)`` int64.

    Example: ``pad_batch([[5, 6, 7], [8]], pad_id=0)`` gives
    ``input_ids = [[5, 6, 7], [8, 0, 0]]`` and ``attention_mask = [[1, 1, 1], [1, 0, 0]]``.
    """
    if padding is True:
        padding = "longest"
    if padding not in ("longest", "max_length", False):
        raise ValueError(f"padding must be 'longest', 'max_length' or False, got {padding!r}")
    if (truncation or padding == "max_length") and max_length is None:
        raise ValueError("truncation and padding='max_length' need max_length")
    seqs = [list(s)[:max_length] if truncation else list(s) for s in seqs]
    lengths = [len(s) for s in seqs]
    if padding == "max_length":
        width = max_length
        if max(lengths, default=0) > width:
            raise ValueError(f"a sequence has {max(lengths)} tokens > max_length={width}")
    else:
        width = max(lengths, default=0)
    if padding is False and len(set(lengths)) > 1:
        raise ValueError(f"sequences have different lengths {sorted(set(lengths))}: use padding")
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = s
        mask[b, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}
