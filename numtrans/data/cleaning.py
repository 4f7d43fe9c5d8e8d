"""Cleaning a corpus before tokenisation: duplicates, junk, the wrong language.

    docs, report = clean(docs, min_chars=5, jaccard=0.8, language="latin")
    report   # {"input": 3000, "exact_duplicates": 17, "near_duplicates": 4, ...}

* exact dedup: the first copy of each (whitespace-normalised) text stays;
* near dedup with MinHash + LSH banding (Broder 1997): a document is the set S of its character
  5-grams; for a random hash h, P[min h(S) = min h(T)] = |S & T| / |S | T| = Jaccard(S, T), so
  the fraction of ``num_perm`` agreeing minima estimates the Jaccard similarity. Banding cuts the
  signature into b bands of r rows: two documents become candidates when one band agrees
  entirely, probability 1 - (1 - J^r)^b, a step near J = (1/b)^(1/r); candidates are then kept
  apart or dropped by their estimated Jaccard against ``jaccard``;
* length and character-class filters (too short/long; too few letters);
* script-based language id: the share of Han characters among letters ("han" vs "latin");
  ``language`` may name one script or several (a bilingual corpus keeps both);
* decontamination (:func:`near_duplicates_of`): the training documents that near-duplicate a
  held-out one, so that a validation loss measures generalisation, not memory.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

_P = (1 << 61) - 1  # a Mersenne prime for the universal hashes (a x + b) mod p


def shingles(text: str, k: int = 5) -> set[str]:
    t = " ".join(text.lower().split())
    return {t[i : i + k] for i in range(max(len(t) - k + 1, 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class MinHasher:
    """``num_perm`` hash functions h_i(x) = (a_i x + b_i) mod p over a stable 64-bit base hash."""

    def __init__(self, num_perm: int = 128, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, 1 << 31, num_perm, dtype=np.uint64)
        self.b = rng.integers(0, 1 << 31, num_perm, dtype=np.uint64)

    def signature(self, items: set[str]) -> np.ndarray:
        base = np.array(
            [
                int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "little")
                for s in items
            ],
            dtype=np.uint64,
        )  # 32-bit values, so a * x stays below 2^63 and never overflows uint64
        return ((base[:, None] * self.a + self.b) % np.uint64(_P)).min(axis=0)  # (num_perm,)


def near_duplicates(docs: list[str], threshold: float = 0.8, num_perm: int = 128, bands: int = 32):
    """Indices of documents that are near-duplicates (estimated Jaccard >= threshold) of an earlier one."""
    if num_perm % bands:
        raise ValueError(f"num_perm {num_perm} must be divisible by bands {bands}")
    mh, rows = MinHasher(num_perm), num_perm // bands
    sigs = [mh.signature(shingles(d)) for d in docs]
    tables: list[dict] = [{} for _ in range(bands)]
    drop = set()
    for i, s in enumerate(sigs):
        cands = set()
        for b in range(bands):
            key = s[b * rows : (b + 1) * rows].tobytes()
            cands.update(tables[b].get(key, ()))
        if any(float((sigs[j] == s).mean()) >= threshold for j in cands):
            drop.add(i)
            continue  # a dropped document is not indexed: only kept ones count as originals
        for b in range(bands):
            tables[b].setdefault(s[b * rows : (b + 1) * rows].tobytes(), []).append(i)
    return drop


def near_duplicates_of(docs: list[str], reference: list[str], threshold: float = 0.8,
                       num_perm: int = 128, bands: int = 32) -> set[int]:  # fmt: skip
    """Indices of ``docs`` whose estimated Jaccard with some ``reference`` document is
    >= ``threshold`` (exact copies included: their signatures agree everywhere)."""
    if num_perm % bands:
        raise ValueError(f"num_perm {num_perm} must be divisible by bands {bands}")
    mh, rows = MinHasher(num_perm), num_perm // bands
    refs = [mh.signature(shingles(d)) for d in reference]
    tables: list[dict] = [{} for _ in range(bands)]
    for j, s in enumerate(refs):
        for b in range(bands):
            tables[b].setdefault(s[b * rows : (b + 1) * rows].tobytes(), []).append(j)
    drop = set()
    for i, d in enumerate(docs):
        s = mh.signature(shingles(d))
        cands = {
            j
            for b in range(bands)
            for j in tables[b].get(s[b * rows : (b + 1) * rows].tobytes(), ())
        }
        if any(float((refs[j] == s).mean()) >= threshold for j in cands):
            drop.add(i)
    return drop


def script(text: str) -> str:
    """'han' if most letters are CJK ideographs, 'latin' if most are Latin, else 'other'."""
    han = len(re.findall(r"[\u4e00-\u9fff\u3400-\u4dbf]", text))
    latin = len(re.findall(r"[A-Za-z\u00c0-\u024f]", text))
    if han + latin == 0:
        return "other"
    return "han" if han >= latin else "latin"


def clean(docs, min_chars=1, max_chars=None, min_alpha=0.5, language=None, jaccard_threshold=0.8):
    """Apply the steps in order; returns (kept docs, report of how many each step removed)."""
    report = {"input": len(docs)}
    seen, out = set(), []
    for d in docs:
        key = " ".join(d.split())
        if key not in seen:
            seen.add(key)
            out.append(d)
    report["exact_duplicates"] = len(docs) - len(out)
    drop = near_duplicates(out, jaccard_threshold) if out else set()
    out = [d for i, d in enumerate(out) if i not in drop]
    report["near_duplicates"] = len(drop)
    n = len(out)
    out = [d for d in out if len(d) >= min_chars and (max_chars is None or len(d) <= max_chars)]
    report["length"], n = n - len(out), len(out)
    out = [d for d in out if d and sum(c.isalpha() for c in d) / len(d) >= min_alpha]
    report["char_class"], n = n - len(out), len(out)
    if language is not None:
        allowed = {language} if isinstance(language, str) else set(language)
        out = [d for d in out if script(d) in allowed]
    report["language"] = n - len(out)
    report["kept"] = len(out)
    return out, report
