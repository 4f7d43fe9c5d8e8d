"""Character-level tokenizer: one token per Unicode code point.

The vocabulary is the sorted set of characters of a training text, after any special tokens::

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.tokens
    ['e', 'h', 'l', 'o']
    >>> tok.encode("hole")
    [1, 3, 2, 0]

This is the tokenizer of nanoGPT's ``shakespeare_char`` (65 characters, no special tokens).
A character outside the vocabulary maps to ``unk_token`` if one is registered, else raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .base import Tokenizer


class CharTokenizer(Tokenizer):
    """Characters as tokens. ``special_tokens`` (e.g. ``["<pad>", "<unk>"]``) take ids 0, 1, ...

    ``pad_token`` / ``unk_token`` default to ``"<pad>"`` / ``"<unk>"`` when those are among
    the special tokens.
    """

    def __init__(
        self,
        chars: Iterable[str],
        special_tokens: Sequence[str] = (),
        pad_token: str | None = None,
        unk_token: str | None = None,
    ):
        chars = list(chars)
        for c in chars:
            if len(c) != 1:
                raise ValueError(f"CharTokenizer tokens must be single characters, got {c!r}")
        specials = list(special_tokens)
        super().__init__(specials + [c for c in chars if c not in specials], specials)
        self.pad_token = self._role(pad_token, "<pad>")
        self.unk_token = self._role(unk_token, "<unk>")

    def _role(self, given: str | None, default: str) -> str | None:
        if given is not None:
            self.special_id(given)  # raises a clear error for an unregistered token
            return given
        return default if default in self.special_tokens else None

    @classmethod
    def from_text(cls, text: str, special_tokens: Sequence[str] = (), **kwargs) -> CharTokenizer:
        """Build the vocabulary from the distinct characters of ``text`` (sorted by code point)."""
        return cls(sorted(set(text)), special_tokens, **kwargs)

    def encode(self, text: str) -> list[int]:
        vocab, unk = self.vocab, self.unk_id
        ids = []
        for pos, c in enumerate(text):
            i = vocab.get(c, unk)
            if i is None:
                raise ValueError(
                    f"character {c!r} (U+{ord(c):04X}) at position {pos} is not in the "
                    "vocabulary and no unk_token is registered"
                )
            ids.append(i)
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = self._check_ids(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.special_ids]
        return "".join(self.tokens[i] for i in ids)

    def _config(self) -> dict:
        return {"pad_token": self.pad_token, "unk_token": self.unk_token}

    @classmethod
    def from_dict(cls, d: dict) -> CharTokenizer:
        specials = d["special_tokens"]
        return cls(d["tokens"][len(specials) :], specials, d.get("pad_token"), d.get("unk_token"))
