"""Byte-level BPE (GPT-2's tokenizer): merges learned over UTF-8 bytes.

Encoding ``text``:

1. split out registered special tokens (``<|endoftext|>``), which map straight to their ids;
2. cut the rest into chunks with GPT-2's regex (:mod:`.pretokenize`);
3. write each chunk's UTF-8 bytes as byte-characters (``" 学"`` -> ``ĠåŃ¦``);
4. repeatedly merge the adjacent pair with the lowest *rank* (the order merges were learned)
   until no learned pair is left; each final piece is a vocabulary token.

Every byte is in the base vocabulary, so nothing is ever unknown, and ``decode`` joins the
tokens' bytes and decodes them as UTF-8: ``decode(encode(s)) == s`` for every Python string.
Lone surrogates (legal in ``str`` but not in UTF-8) go through the ``surrogatepass`` codec;
ids that end mid-character decode with U+FFFD replacement characters.

The vocabulary is ``256 byte tokens`` (in GPT-2's order), then one token per merge, then the
special tokens. ``save_pretrained(dir)`` writes GPT-2's ``vocab.json`` + ``merges.txt``, which
the Hugging Face ``tokenizers`` library and ``from_pretrained(dir)`` read back.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence

from ..io import atomic_write_text
from .base import Tokenizer, read_json
from .bpe_train import train_bpe
from .pretokenize import bytes_to_unicode, pre_tokenize, unicode_to_bytes


def _encode_utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _decode_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # ids cut inside a multi-byte character
        return data.decode("utf-8", "replace")


class ByteBPETokenizer(Tokenizer):
    """Byte-level BPE. ``merges`` are pairs of token strings, in rank order.

    Build one with :meth:`train`, :meth:`from_pretrained` (GPT-2 files) or :func:`load`.
    """

    def __init__(
        self,
        tokens: Sequence[str],
        merges: Sequence[tuple[str, str]],
        special_tokens: Sequence[str] = (),
        pad_token: str | None = None,
    ):
        super().__init__(tokens, special_tokens)
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: r for r, m in enumerate(self.merges)}
        for r, (a, b) in enumerate(self.merges):
            if a not in self.vocab or b not in self.vocab or a + b not in self.vocab:
                raise ValueError(f"merge {r} ({a!r} {b!r}) uses a token missing from the vocab")
        self.pad_token = pad_token
        if pad_token is not None:
            self.special_id(pad_token)
        self._byte_enc = bytes_to_unicode()
        self._byte_dec = unicode_to_bytes()
        self._cache: dict[str, list[int]] = {}
        self._special_re = None
        if special_tokens:  # longest first, so "<|a|>x" wins over its prefix "<|a|>"
            alts = "|".join(re.escape(t) for t in sorted(special_tokens, key=len, reverse=True))
            self._special_re = re.compile(f"({alts})")

    # ---- training -----------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        texts: str | Iterable[str],
        vocab_size: int,
        special_tokens: Sequence[str] = (),
        min_frequency: int = 2,
        pad_token: str | None = None,
        verbose: bool = False,
    ) -> ByteBPETokenizer:
        """Learn merges until the vocabulary (bytes + merges + specials) has ``vocab_size``
        tokens or no pair occurs ``min_frequency`` times. See :mod:`.bpe_train`."""
        tokens, merges = train_bpe(texts, vocab_size, special_tokens, min_frequency, verbose)
        return cls(tokens, merges, special_tokens, pad_token)

    # ---- encoding -----------------------------------------------------------------------
    def _bpe(self, chunk: str) -> list[int]:
        """Token ids of one pre-tokenised chunk (memoised: text repeats the same words)."""
        if chunk in self._cache:
            return self._cache[chunk]
        word = [self._byte_enc[b] for b in _encode_utf8(chunk)]
        ranks = self.ranks
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            a, b = best
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids = [self.vocab[t] for t in word]
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[chunk] = ids
        return ids

    def encode(self, text: str, allowed_special: str | Iterable[str] = "all") -> list[int]:
        """Token ids of ``text``. ``allowed_special`` names the special tokens that a literal
        occurrence in ``text`` may become ("all", the default, as GPT-2; ``()`` for untrusted
        text such as a chat user's message: a typed ``"<|user|>"`` then stays ordinary bytes)."""
        allowed = set(self.special_tokens) if allowed_special == "all" else set(allowed_special)
        parts = self._special_re.split(text) if self._special_re and allowed else [text]
        ids: list[int] = []
        for k, part in enumerate(parts):
            if k % 2 and part in allowed:  # re.split puts the separators at odd positions
                ids.append(self.vocab[part])
            elif k % 2:
                for chunk in pre_tokenize(part):
                    ids.extend(self._bpe(chunk))
            else:
                for chunk in pre_tokenize(part):
                    ids.extend(self._bpe(chunk))
        return ids

    def tokenize(self, text: str) -> list[str]:
        """The token strings (in byte-character form) of ``text``."""
        return [self.tokens[i] for i in self.encode(text)]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        out, buf = [], bytearray()
        for i in self._check_ids(ids):
            if i in self.special_ids:
                if not skip_special_tokens:
                    out.append(_decode_utf8(bytes(buf)) + self.tokens[i])
                    buf.clear()
            else:
                buf.extend(self._byte_dec[c] for c in self.tokens[i])
        return "".join(out) + _decode_utf8(bytes(buf))

    def token_bytes(self, i: int) -> bytes:
        """The raw bytes a (non-special) token stands for: ``åŃ¦`` -> ``b'\\xe5\\xad\\xa6'``."""
        return bytes(self._byte_dec[c] for c in self.tokens[self._check_ids([i])[0]])

    def add_special_tokens(self, tokens: Sequence[str]) -> int:
        """Append special tokens (e.g. a chat template's) at the end of the vocabulary; returns
        how many were new (Hugging Face's convention). A model's embedding must then grow to the
        new ``vocab_size``."""
        new = [t for t in dict.fromkeys(tokens) if t not in self.vocab]
        self._set_vocab(self.tokens + new, self.special_tokens + new)
        alts = "|".join(re.escape(t) for t in sorted(self.special_tokens, key=len, reverse=True))
        self._special_re = re.compile(f"({alts})")
        return len(new)

    # ---- persistence --------------------------------------------------------------------
    def _config(self) -> dict:
        return {"merges": [list(m) for m in self.merges], "pad_token": self.pad_token}

    @classmethod
    def from_dict(cls, d: dict) -> ByteBPETokenizer:
        if not isinstance(d.get("merges"), list):
            raise ValueError("malformed ByteBPETokenizer file: 'merges' must be a list")
        return cls(d["tokens"], d["merges"], d["special_tokens"], d.get("pad_token"))

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write GPT-2's ``vocab.json`` (token -> id) and ``merges.txt`` (one pair a line)."""
        os.makedirs(directory, exist_ok=True)
        atomic_write_text(
            os.path.join(directory, "vocab.json"), json.dumps(self.vocab, ensure_ascii=False)
        )
        merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self.merges)
        atomic_write_text(os.path.join(directory, "merges.txt"), merges)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        special_tokens: Sequence[str] | None = None,
        pad_token: str | None = None,
    ) -> ByteBPETokenizer:
        """Read ``vocab.json`` + ``merges.txt`` (GPT-2's format) from ``directory``.

        With ``special_tokens=None``, the special tokens are the vocabulary entries that are
        neither a byte nor made by a merge (for GPT-2: ``<|endoftext|>``).
        """
        vocab = read_json(os.path.join(directory, "vocab.json"), "vocab.json")
        if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
            raise ValueError(f"{directory}/vocab.json must map token strings to integer ids")
        ids = sorted(vocab.values())
        if ids != list(range(len(ids))):
            raise ValueError(f"{directory}/vocab.json: ids must be exactly 0..{len(ids) - 1}")
        tokens = sorted(vocab, key=vocab.get)
        merges = read_merges(os.path.join(directory, "merges.txt"))
        if special_tokens is None:
            made = set(bytes_to_unicode().values()) | {a + b for a, b in merges}
            special_tokens = [t for t in tokens if t not in made]
        return cls(tokens, merges, special_tokens, pad_token)


def read_merges(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Parse merges.txt: an optional ``#version`` line, then ``left right`` per line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"merges file not found: {path}")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = []
    for n, line in enumerate(lines, start=1):
        if not line or (n == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(
                f"{path}, line {n}: expected two tokens separated by a space: {line!r}"
            )
        merges.append((parts[0], parts[1]))
    return merges
