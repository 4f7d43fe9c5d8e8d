"""BM25 lexical retrieval with Lucene's formula (equal to ``bm25s``'s ``method="lucene"``).

For a query q and a document d of length dl (tokens), over a corpus of N documents with mean
length avgdl, where n(t) documents contain term t and tf(t, d) counts t in d::

    idf(t)      = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))          # never negative
    score(q, d) = sum_{t in q} idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))

k1 caps how much repeating a term helps (tf saturates); b sets how strongly long documents are
penalised. A query term repeated in the query counts once per occurrence, as in ``bm25s``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np


class BM25:
    """Index ``corpus_tokens`` (a list of token lists); :meth:`get_scores` scores every document."""

    def __init__(self, corpus_tokens: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75):
        if isinstance(corpus_tokens, str) or not len(corpus_tokens):
            raise ValueError("BM25: corpus_tokens must be a non-empty list of token lists")
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"BM25: need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b = float(k1), float(b)
        self.n_docs = len(corpus_tokens)
        self.doc_len = np.array([len(d) for d in corpus_tokens], dtype=np.float64)
        self.avgdl = float(self.doc_len.mean()) or 1.0
        # Postings: term -> (document ids, term frequencies), so a query touches only its terms.
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, doc in enumerate(corpus_tokens):
            for term, tf in Counter(doc).items():
                ids, tfs = postings.setdefault(term, ([], []))
                ids.append(i)
                tfs.append(tf)
        self.postings = {
            t: (np.array(i), np.array(f, np.float64)) for t, (i, f) in postings.items()
        }
        self.idf = {
            t: math.log(1 + (self.n_docs - len(i) + 0.5) / (len(i) + 0.5))
            for t, (i, _) in self.postings.items()
        }
        # Per-document length normaliser k1 * (1 - b + b dl / avgdl), computed once.
        self._norm = self.k1 * (1 - self.b + self.b * self.doc_len / self.avgdl)

    def get_scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for one query: shape ``(n_docs,)``, float64."""
        if isinstance(query_tokens, str):
            raise ValueError("BM25.get_scores: query_tokens must be a list of tokens, not a string")
        scores = np.zeros(self.n_docs)
        for term in query_tokens:
            if term not in self.postings:
                continue
            ids, tf = self.postings[term]
            scores[ids] += self.idf[term] * tf / (tf + self._norm[ids])
        return scores

    def top_k(self, query_tokens: Sequence[str], k: int = 10) -> np.ndarray:
        """Indices of the ``k`` best documents, best first (ties: lower index first)."""
        scores = self.get_scores(query_tokens)
        return np.argsort(-scores, kind="stable")[: min(k, self.n_docs)]
