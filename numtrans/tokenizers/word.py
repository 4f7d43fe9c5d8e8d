"""Word-level tokenizer: rule-based pre-tokenisation and a frequency-cut vocabulary.

Pre-tokenisation rules (applied left to right, first match wins):

1. a number: digits with optional ``.``/``,`` groups        ``3.14``, ``1,000``
2. a CJK ideograph, alone (Chinese has no spaces)          ``学``, ``习``
3. a word: letters with inner apostrophes                 ``don't``, ``Rome``
4. any other non-space character, alone (punctuation)      ``,``, ``!``, ``😀``

    >>> WordTokenizer.pre_tokenize("Don't panic, it's 3.14!")
    ["Don't", 'panic', ',', "it's", '3.14', '!']

The special tokens sit at fixed ids 0..6 in every vocabulary::

    <pad>=0  <unk>=1  <bos>=2  <eos>=3  <mask>=4  <cls>=5  <sep>=6

then come the words by decreasing frequency (ties: alphabetical), keeping those seen at least
``min_freq`` times, at most ``max_size`` tokens in all. Unknown words map to ``<unk>``.
``decode`` joins the tokens with single spaces: the original spacing is not kept, so
``decode(encode(s)) == s`` holds for text already written as space-separated known tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from .base import Tokenizer

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "<cls>", "<sep>")

# CJK Unified Ideographs (+ extension A, compatibility ideographs, extensions B..F).
CJK_RANGES = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef"
    "\U0002f800-\U0002fa1f"
)
# Combining marks (accents written as separate code points) continue a word.
MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
LETTER = rf"(?:[^\W\d_{CJK_RANGES}][{MARKS}]*)"  # \w minus digits, _ and CJK: letters (+ No/Nl)
WORD_RE = re.compile(rf"\d+(?:[.,]\d+)*|[{CJK_RANGES}]|{LETTER}+(?:['’]{LETTER}+)*|\S")


class WordTokenizer(Tokenizer):
    """Whole words as tokens, with the seven special tokens at stable ids."""

    pad_token, unk_token = "<pad>", "<unk>"
    bos_token, eos_token, mask_token = "<bos>", "<eos>", "<mask>"
    cls_token, sep_token = "<cls>", "<sep>"

    def __init__(self, words: Iterable[str] = (), lowercase: bool = False):
        words = [w for w in words if w not in SPECIAL_TOKENS]
        super().__init__(list(SPECIAL_TOKENS) + words, SPECIAL_TOKENS)
        self.lowercase = lowercase

    @staticmethod
    def pre_tokenize(text: str, lowercase: bool = False) -> list[str]:
        """Split text into words, numbers and single punctuation/symbol characters."""
        return WORD_RE.findall(text.lower() if lowercase else text)

    @classmethod
    def from_texts(
        cls,
        texts: str | Iterable[str],
        min_freq: int = 1,
        max_size: int | None = None,
        lowercase: bool = False,
    ) -> WordTokenizer:
        """Count the words of ``texts`` and keep the frequent ones.

        ``max_size`` counts the 7 special tokens too (a vocabulary of exactly ``max_size``).
        """
        if isinstance(texts, str):
            texts = [texts]
        if max_size is not None and max_size < len(SPECIAL_TOKENS):
            raise ValueError(
                f"max_size={max_size} is smaller than the {len(SPECIAL_TOKENS)} specials"
            )
        counts = Counter()
        for t in texts:
            counts.update(cls.pre_tokenize(t, lowercase))
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        words = [w for w, n in ranked if n >= min_freq and w not in SPECIAL_TOKENS]
        if max_size is not None:
            words = words[: max_size - len(SPECIAL_TOKENS)]
        return cls(words, lowercase=lowercase)

    def tokenize(self, text: str) -> list[str]:
        return self.pre_tokenize(text, self.lowercase)

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Word ids; ``add_bos``/``add_eos`` wrap the sequence in ``<bos>`` ... ``<eos>``."""
        vocab, unk = self.vocab, self.unk_id
        ids = [vocab.get(w, unk) for w in self.tokenize(text)]
        return [self.vocab["<bos>"]] * add_bos + ids + [self.vocab["<eos>"]] * add_eos

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        ids = self._check_ids(ids)
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.special_ids]
        return " ".join(self.tokens[i] for i in ids)

    def _config(self) -> dict:
        return {"lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d: dict) -> WordTokenizer:
        if d["tokens"][: len(SPECIAL_TOKENS)] != list(SPECIAL_TOKENS):
            raise ValueError("malformed WordTokenizer file: special tokens must come first")
        return cls(d["tokens"][len(SPECIAL_TOKENS) :], lowercase=bool(d.get("lowercase")))
