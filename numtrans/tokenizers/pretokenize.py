"""GPT-2's byte-to-unicode table and pre-tokenisation regex, with Python's ``re`` module.

**Bytes as characters.** Byte-level BPE works on UTF-8 bytes, but vocab.json stores tokens as
text, so GPT-2 maps each of the 256 bytes to a printable character: the 188 printable bytes
(``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) map to themselves, the 68 others (controls, space,
...) to ``Ā`` (U+0100) onwards. A space (0x20) becomes ``Ġ``, a newline (0x0A) ``Ċ``; and
``学`` = bytes ``E5 AD A6`` becomes the 3-character token ``åŃ¦``.

**Pre-tokenisation.** Text is cut into chunks before BPE so merges never cross them::

    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

(contractions, an optional space + letters / numbers / other symbols, runs of whitespace).
Python's ``re`` has no ``\\p{...}``, so the classes are built once from the Unicode database:

* ``\\p{L}`` = characters with ``str.isalpha()`` (categories Lu Ll Lt Lm Lo),
* ``\\p{N}`` = word characters that are neither letters nor ``_`` (categories Nd Nl No),
* ``\\s`` = the Unicode ``White_Space`` property. Python's own ``\\s`` also matches the
  separators U+001C..U+001F, which the Rust/Oniguruma ``\\s`` used by GPT-2 tooling does not.

The one remaining difference is the Unicode version of Python's ``unicodedata`` (15.0 in Python
3.12): characters assigned in later versions may be classed differently.
"""

from __future__ import annotations

import functools
import itertools
import re
import sys

import numpy as np


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte value to one printable character (a bijection)."""
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


@functools.cache
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


# Unicode White_Space: what \s means in Rust's regex crate and in Oniguruma.
WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _char_class(chars: str) -> str:
    """Contents of a regex [...] class matching exactly ``chars`` (sorted): ``a-z`` ranges."""
    cps = np.frombuffer(chars.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    breaks = np.flatnonzero(np.diff(cps) != 1)  # a run of consecutive code points ends here
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(cps) - 1]])
    return "".join(
        f"\\U{cps[i]:08x}" if i == j else f"\\U{cps[i]:08x}-\\U{cps[j]:08x}"
        for i, j in zip(starts.tolist(), ends.tolist())
    )


@functools.cache
def unicode_classes() -> tuple[str, str]:
    """``(letters, numbers)`` as regex class contents; built once (about 0.1 s)."""
    # Every code point in one string (0.01 s via UTF-32, against 0.3 s for "".join(map(chr, ...))).
    every = (
        np.arange(sys.maxunicode + 1, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    )
    alnum = re.sub(r"[\W_]+", "", every)  # Python's \w minus "_": exactly categories L* and N*
    letters = "".join(filter(str.isalpha, alnum))
    numbers = "".join(itertools.filterfalse(str.isalpha, alnum))
    return _char_class(letters), _char_class(numbers)


@functools.cache
def gpt2_pattern() -> re.Pattern:
    """The GPT-2 pre-tokenisation regex, translated for Python's ``re``."""
    L, N = unicode_classes()
    S = WHITESPACE
    return re.compile(
        rf"""'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+"""
    )


def pre_tokenize(text: str) -> list[str]:
    """Cut text into GPT-2 chunks. ``"Hello world!!"`` -> ``['Hello', ' world', '!!']``."""
    return gpt2_pattern().findall(text)
