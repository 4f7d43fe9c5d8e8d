"""WordPiece tokens with character offsets: which slice of the original text each token came from.

Extractive QA predicts a span of *tokens*; the answer is the *characters* those tokens cover,
``context[offsets[s][0]:offsets[e][1]]``, so the exact original substring comes back (with its
capitals and accents), not the lower-cased word pieces.

BERT's basic tokenizer only deletes characters (controls), splits (whitespace, punctuation, CJK)
or rewrites a character in place (lower case, accent stripping: NFD then drop the marks). So we
normalise the text one character at a time and remember, for every normalised character, the
index of the original character it came from::

    text  "Café, ok"          ->  words  "cafe" ","  "ok"
    origin of each character      0123   4    6 7
    word pieces "ca" "##fe"   ->  offsets (0, 2) (2, 4)

A piece spans from the origin of its first character to one past the origin of its last; an
``[UNK]`` word covers the whole word. The tokens equal ``tokenizer.tokenize(text)``.
"""

from __future__ import annotations

import unicodedata

from ..tokenizers.bert_basic import is_cjk, is_control, is_punctuation, is_whitespace


def _normalise_char(ch: str, lowercase: bool, strip: bool) -> str:
    if strip:
        ch = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
    if lowercase:
        ch = "".join(c.lower() for c in ch)
    return ch


def basic_words_with_origins(text: str, tokenizer) -> list[tuple[str, list[int]]]:
    """Basic-tokenizer words, each with the original index of every one of its characters."""
    lowercase = tokenizer.do_lower_case
    strip = lowercase if tokenizer.strip_accents is None else tokenizer.strip_accents
    words: list[tuple[str, list[int]]] = []
    chars: list[str] = []
    origins: list[int] = []

    def flush():
        if chars:
            words.append(("".join(chars), origins.copy()))
            chars.clear()
            origins.clear()

    for i, ch in enumerate(text):
        if ch in "\x00\ufffd" or is_control(ch):
            continue
        if is_whitespace(ch):
            flush()
            continue
        if tokenizer.tokenize_chinese_chars and is_cjk(ch):
            flush()
            words.append((ch, [i]))
            continue
        for c in _normalise_char(ch, lowercase, strip):
            if is_punctuation(c):  # punctuation is split after normalisation, as in BERT
                flush()
                words.append((c, [i]))
            else:
                chars.append(c)
                origins.append(i)
    flush()
    return words


def tokenize_with_offsets(text: str, tokenizer) -> tuple[list[str], list[tuple[int, int]]]:
    """``(tokens, offsets)``: WordPiece tokens of ``text`` and their ``(start, end)`` slices."""
    tokens, offsets = [], []
    for word, origin in basic_words_with_origins(text, tokenizer):
        pos = 0
        for piece in tokenizer.word_pieces(word):
            tokens.append(piece)
            if piece == tokenizer.unk_token:
                offsets.append((origin[0], origin[-1] + 1))
                continue
            n = len(piece) - 2 if piece.startswith("##") and pos else len(piece)
            offsets.append((origin[pos], origin[pos + n - 1] + 1))
            pos += n
    return tokens, offsets
