"""BERT's "basic tokenizer": normalise text and split it into words and punctuation.

Steps, as in Google's ``tokenization.py`` and the ``BertNormalizer`` + ``BertPreTokenizer`` of
the Hugging Face ``tokenizers`` library:

1. clean: drop U+0000, U+FFFD and control characters (Unicode category ``C*`` except
   ``\\t \\n \\r``); turn whitespace (``\\t \\n \\r``, space and category ``Zs``) into spaces;
2. surround every CJK ideograph with spaces, so Chinese splits into single characters;
3. split on whitespace; strip accents (Unicode NFD, then drop the combining marks, category
   ``Mn``) and lowercase each word: ``"Café"`` -> ``"cafe"``;
4. split every punctuation character (ASCII symbols ``!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~`` or
   Unicode category ``P*``) into its own word.

    >>> basic_tokenize("Héllo, 世界! It's")
    ['hello', ',', '世', '界', '!', 'it', "'", 's']

Lowercasing is per character (``str.lower`` on one character), as in ``tokenizers``, so a final
Greek sigma gives ``σ`` rather than the ``ς`` that ``str.lower`` on a whole word would give.
"""

from __future__ import annotations

import unicodedata

CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def is_cjk(ch: str) -> bool:
    """A CJK ideograph as BERT defines it (not kana or hangul, which have spaces)."""
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punctuation(ch: str) -> bool:
    """ASCII non-alphanumeric printable characters count too (``$``, ``^``, ``` ` ```)."""
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def clean_text(text: str, tokenize_chinese_chars: bool = True) -> str:
    """Steps 1 and 2: drop controls, normalise whitespace, space out CJK ideographs."""
    out = []
    for ch in text:
        if ch in "\x00\ufffd" or is_control(ch):
            continue
        if is_whitespace(ch):
            out.append(" ")
        elif tokenize_chinese_chars and is_cjk(ch):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


def strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def split_punctuation(word: str) -> list[str]:
    """``"it's!"`` -> ``['it', "'", 's', '!']``."""
    pieces, current = [], []
    for ch in word:
        if is_punctuation(ch):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(ch)
        else:
            current.append(ch)
    if current:
        pieces.append("".join(current))
    return pieces


def basic_tokenize(
    text: str,
    lowercase: bool = True,
    strip_accents_: bool | None = None,
    tokenize_chinese_chars: bool = True,
) -> list[str]:
    """Words and punctuation of ``text``; ``strip_accents_=None`` follows ``lowercase``."""
    do_strip = lowercase if strip_accents_ is None else strip_accents_
    words = []
    for word in clean_text(text, tokenize_chinese_chars).split():
        if do_strip:
            word = strip_accents(word)
        if lowercase:
            word = "".join(c.lower() for c in word)
        words.extend(split_punctuation(word))
    return words
