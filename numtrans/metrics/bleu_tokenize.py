"""The tokenizers BLEU uses, written to match sacrebleu 2.x exactly.

BLEU counts word n-grams, so the score depends on how text is cut into words. Scores are
only comparable when everyone cuts the same way; sacrebleu fixed the conventions and we
follow them. Every tokenizer maps a string to a string with single spaces between tokens;
``tokens = tokenize(line).split()``.

* ``"13a"``: the WMT standard (mteval-v13a): split punctuation and symbols off words, but
  keep ``3.5``, ``1,000`` and ``don't`` intact.
* ``"zh"``: Chinese has no spaces between words, so every CJK character (and CJK
  punctuation) becomes a token of its own; the rest is cut as in 13a.
* ``"char"``: every non-space character is a token.
* ``"none"``: split on whitespace only (for text that is already tokenized).
"""

from __future__ import annotations

import re

TOKENIZERS = ("13a", "zh", "char", "none")

# ASCII symbols that always become a token of their own: everything printable that is not
# a letter, a digit, or one of  ' , - .  (those four follow the context rules below).
_SYMBOL = re.compile(r"([ -&(-+/:-@\[-`{-~])")
# A period or comma is split off unless it sits between digits ("3.5", "1,000").
_PUNCT_AFTER_NON_DIGIT = re.compile(r"([^0-9])([.,])")
_PUNCT_BEFORE_NON_DIGIT = re.compile(r"([.,])([^0-9])")
# A dash right after a digit is split off ("1990-2000" -> "1990 - 2000").
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")

# The rules run in this order, each over the whole line; order matters, e.g. in "a.,b".
_RULES = (
    (_SYMBOL, r" \1 "),
    (_PUNCT_AFTER_NON_DIGIT, r"\1 \2 "),
    (_PUNCT_BEFORE_NON_DIGIT, r" \1 \2"),
    (_DASH_AFTER_DIGIT, r"\1 \2 "),
)

# SGML escapes undone by 13a, in this order ("&amp;lt;" therefore ends up as "<").
_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


def _split_punctuation(line: str) -> str:
    """Apply the four rules, then squeeze all whitespace runs to single spaces."""
    for pattern, replacement in _RULES:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def tokenize_13a(line: str) -> str:
    """mteval-v13a: ``'Hello, world (2024)!'`` -> ``'Hello , world ( 2024 ) !'``."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in _ENTITIES:
        line = line.replace(entity, char)
    return _split_punctuation(f" {line} ")


# Code points that the zh tokenizer cuts out one per token. The list is sacrebleu's
# (CJK ideographs, radicals, strokes, CJK punctuation, full-width forms, ...) as it
# behaves in practice: sacrebleu writes the supplementary-plane block "Extension B"
# (U+20000-U+2A6D6) with 4-digit escapes, so Python reads it as the range U+2001-U+2A6D
# (general punctuation such as "—" and "“", arrows, math symbols) and never splits the
# real Extension B characters. We keep that behaviour so that scores match sacrebleu.
_ZH_RANGES = (
    (0x2001, 0x2A6D),  # the accidental range described above
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x2FF0, 0x303F),  # ideographic description characters, CJK symbols and punctuation
    (0x3100, 0x312F),  # Bopomofo
    (0x31A0, 0x31EF),  # Bopomofo extended, CJK strokes
    (0x3200, 0x4DB5),  # enclosed CJK, CJK compatibility, CJK Extension A
    (0x4E00, 0x9FBB),  # CJK unified ideographs
    (0xF900, 0xFA2D),  # CJK compatibility ideographs
    (0xFA30, 0xFA6A),
    (0xFA70, 0xFAD9),
    (0xFE10, 0xFE1F),  # vertical forms
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # full-width ASCII and punctuation, half-width kana
)
_ZH_CHAR = re.compile("([" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _ZH_RANGES) + "])")


def tokenize_zh(line: str) -> str:
    """Chinese: ``'我爱北京。OK, yes'`` -> ``'我 爱 北 京 。 OK , yes'``.

    Put spaces around every character in ``_ZH_RANGES``, then cut the remaining
    (non-Chinese) text with the 13a punctuation rules. Unlike 13a, no SGML unescaping.
    """
    return _split_punctuation(_ZH_CHAR.sub(r" \1 ", line.strip()))


def tokenize_char(line: str) -> str:
    """Characters: ``'ab c'`` -> ``'a b c'`` (whitespace itself is dropped)."""
    return " ".join(line)


def tokenize_none(line: str) -> str:
    """No tokenization: the line is split on whitespace as it is."""
    return line


def get_tokenizer(name: str):
    """The tokenizer function called ``name`` (one of ``TOKENIZERS``)."""
    table = {"13a": tokenize_13a, "zh": tokenize_zh, "char": tokenize_char, "none": tokenize_none}
    if name not in table:
        raise ValueError(f"unknown tokenize={name!r}; choose one of {TOKENIZERS}")
    return table[name]
