"""Split a text into sentences: English news rules plus Chinese end punctuation.

An extractive summariser picks whole sentences, so it needs to know where each one ends.
:func:`split_sentences` uses a few rules, in this order:

1. **A line break (``\\n``) always ends a sentence.** News articles (XSum's among them) put one
   paragraph per line, and a heading or a by-line has no full stop.
2. **Chinese** (and Japanese) sentences end at ``。！？`` (also ``！？`` repeated, ``……``), and any
   closing quotes or brackets after the mark belong to the sentence: ``他说：“好。”然后`` splits after
   ``”``. No space is needed after the mark (Chinese writes none).
3. **English** sentences end at ``.``, ``!`` or ``?`` (and their runs, ``...``, ``?!``) followed by
   optional closing quotes/brackets, then whitespace, then a capital letter, a digit or an
   opening quote/bracket (or a letter without case, as Chinese). So ``3.5`` (no space) and ``"Why?" he asked`` (lower case next) do not
   split, and ``He left. "Now," she said.`` does.
4. **A full stop after an abbreviation is not always an end.** Three kinds, all hand-listed:

   * *titles* written with a capital (``Mr.``, ``Dr.``, ``Prof.``, ``St.``, ``Gen.``) and single
     initials (``J. K. Rowling``) come before a name: never an end;
   * *abbreviations before a number* (``No. 10``, ``Fig. 3``, ``Jan. 5``, ``pp. 4``): not an end
     when a digit follows;
   * *ambiguous ones*, which also end sentences (``etc.``, ``Inc.``, ``Ltd.``, ``Jr.``, ``et al.``)
     and dotted acronyms (``U.S.``, ``U.K.``, ``e.g.``): an end only when the next word is a
     frequent sentence starter (``The``, ``He``, ``It``, ``But``, ...), the idea of Punkt's
     (Kiss & Strunk 2006) "frequent sentence starters", with a hand-written list.

   Lower-case words are never taken for titles: ``The cat sat. Then ...`` splits (a list of
   abbreviations holding ``sat``, ``sun`` or ``wed`` would not).

Limits (what these rules get wrong, by design of a short rule list, not a trained model):

* a sentence that ends with a title or an initial (``... went to see Dr. Then`` or ``Plan B.
  Then``) is joined to the next one; so is one ending with an acronym or an ambiguous
  abbreviation before a word not on the starter list (``... in the U.S. Officials said``);
* an abbreviation missing from the list (``Capt.``) ends a sentence before a capital;
* a sentence starting with a lower-case letter (``iPhone sales rose.``) is joined to the one
  before; so is English without a space after the full stop (``end.Next``);
* quotes are not matched: a full stop inside an unfinished quotation ends the sentence;
* Chinese commas and semicolons (``，；``) never end a sentence; a Western ``.``/``?`` inside
  Chinese text follows the English rule (it needs a space and a capital after it).

Every returned sentence is stripped of surrounding whitespace; empty ones are dropped.
Joining the sentences back (:func:`join_sentences`) puts a space between English sentences and
none between Chinese ones.
"""

from __future__ import annotations

import re

# Chinese / full-width sentence ends, and the closers that stay with the sentence.
_CJK_END = "。！？"
_CLOSERS = "\"'”’」』）)]》〉"
_OPENERS = "\"'“‘「『（([《〈"

# Titles before a name: their full stop never ends a sentence (matched capitalised only).
TITLES = frozenset(
    """mr mrs ms mx dr prof rev hon st sen gov gen col lt sgt cpl capt cmdr adm maj pres rep
    supt insp det fr mt messrs""".split()
)
# Abbreviations before a number: "No. 10", "Fig. 3", "Jan. 5" (not an end before a digit).
BEFORE_NUMBER = frozenset(
    """no nos fig figs vol vols pp p art ch sec para ed
    jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)
# Abbreviations that also end sentences: an end only before a frequent sentence starter.
AMBIGUOUS = frozenset("etc al inc ltd co corp plc bros jr sr approx vs".split())

# Words that often start a sentence: after a dotted acronym (U.S.) they mean a new sentence.
SENTENCE_STARTERS = frozenset(
    """the a an he she it they we i you this that these those there his her its their our my
    but and so yet however meanwhile in on at for if when while after before since although
    though as mr mrs ms dr officials police""".split()
)

# A candidate end: the mark(s), then closers. Group 1 = mark, group 2 = closers.
_EN_END = re.compile(r"([.!?]+|…+)([" + re.escape(_CLOSERS) + r"]*)(?=\s)")
_ZH_END = re.compile(r"([" + _CJK_END + r"]+|……)([" + re.escape(_CLOSERS) + r"]*)")
_ACRONYM = re.compile(r"^(?:[A-Za-z]\.){2,}$")  # U.S. e.g. U.K. (the last dot included)
_INITIAL = re.compile(r"^[A-Z]\.$")  # J.


def _last_word(text: str, end: int) -> str:
    """The whitespace-delimited word that ends at ``text[end-1]``, opening quotes stripped."""
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end].lstrip(_OPENERS)


def _next_word(text: str, start: int) -> str:
    match = re.compile(r"\s*([^\s]*)").match(text, start)
    return match.group(1) if match else ""


def _english_end(line: str, match: re.Match) -> bool:
    """Whether an English candidate end (``match`` of ``_EN_END``) really ends the sentence."""
    following = _next_word(line, match.end())
    if not following:
        return True  # the end of the line
    first = following[0]
    # a capital, a digit, an opener, or a letter with no case at all (Chinese after English)
    if not (first.isdigit() or first in _OPENERS or (first.isalpha() and not first.islower())):
        return False  # "Why?" he asked / 3.5 p.m. on Tuesday
    if match.group(1) != ".":
        return True  # ! ? ... are not abbreviation dots
    word = _last_word(line, match.start(1) + 1)  # includes the dot
    bare = word[:-1]
    if _INITIAL.match(word) or (bare[:1].isupper() and bare.lower() in TITLES):
        return False
    if bare.lower() in BEFORE_NUMBER and first.isdigit():
        return False
    if _ACRONYM.match(word) or bare.lower() in AMBIGUOUS:
        return following.lstrip(_OPENERS).lower().strip(",;:") in SENTENCE_STARTERS
    return True


def _split_line(line: str) -> list[str]:
    ends = [m.end() for m in _ZH_END.finditer(line)]
    ends += [m.end() for m in _EN_END.finditer(line) if _english_end(line, m)]
    pieces, start = [], 0
    for end in sorted(set(ends)):
        pieces.append(line[start:end])
        start = end
    pieces.append(line[start:])
    return [p.strip() for p in pieces if p.strip()]


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order (see the module docstring for the rules and limits).

    >>> split_sentences('Mr. Smith paid $3.5m. "Why?" he asked. 他来了。她走了！')
    ['Mr. Smith paid $3.5m.', '"Why?" he asked.', '他来了。', '她走了！']
    """
    if not isinstance(text, str):
        raise TypeError(f"split_sentences takes a str, got {type(text).__name__}")
    sentences = []
    for line in text.replace("\r\n", "\n").split("\n"):  # not splitlines(): U+0085 is text
        sentences.extend(_split_line(line))
    return sentences


def _is_cjk(ch: str) -> bool:
    return ord(ch) >= 0x2E80  # CJK radicals onwards: ideographs, kana, full-width punctuation


def join_sentences(sentences: list[str]) -> str:
    """Sentences back into one text: a space between them, none after a Chinese sentence."""
    out = ""
    for s in sentences:
        if out and not (_is_cjk(out[-1]) and _is_cjk(s[0])):
            out += " "
        out += s
    return out
