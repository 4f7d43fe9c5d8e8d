"""Hybrid retrieval: BM25 and dense rankings merged by reciprocal-rank fusion (RRF).

Lexical BM25 finds passages that share the query's rare words (names, numbers); dense MiniLM
embeddings find paraphrases. Their scores live on unrelated scales, so RRF (Cormack, Clarke &
Buettcher, SIGIR 2009) fuses *ranks* only. With R rankings, rank_r(d) counted from 1::

    score(d) = sum_r  1 / (k + rank_r(d))          (k = 60; a ranking without d adds 0)

k damps the top ranks: with k = 60, first place is worth 1/61 and tenth 1/70, so agreement of
several rankers counts for more than one ranker's first place. Sums use ``math.fsum`` (exactly
rounded, so equal sums are equal whatever the order); ties go to the document first seen when
the rankings are read rank by rank (all first places, then all second places, ...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence

import numpy as np

from .bm25 import BM25
from .dense import DenseRetriever

_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """BM25's tokens: lower-cased runs of word characters (letters, digits, underscore)."""
    return _WORD.findall(text.lower())


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hashable]], k: float = 60
) -> list[tuple[Hashable, float]]:
    """Fuse rankings (each a list of document ids, best first) into ``[(id, score), ...]``,
    best first."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if isinstance(rankings, (str, bytes)) or not len(rankings):
        raise ValueError("rankings must be a non-empty list of rankings")
    terms: dict[Hashable, list[float]] = {}
    for r, ranking in enumerate(rankings):
        if isinstance(ranking, (str, bytes)):
            raise ValueError(f"ranking {r} is a string, not a list of document ids")
        if len(set(ranking)) != len(ranking):
            raise ValueError(f"ranking {r} lists a document twice")
    depth = max(len(r) for r in rankings)
    for rank in range(depth):  # rank by rank: dict order is the tie-break order
        for ranking in rankings:
            if rank < len(ranking):
                terms.setdefault(ranking[rank], []).append(1.0 / (k + rank + 1))
    scores = [(doc, math.fsum(t)) for doc, t in terms.items()]
    return sorted(scores, key=lambda item: -item[1])  # stable: ties keep first-seen order


class HybridRetriever:
    """BM25 + dense retrieval fused by RRF: ``retrieve(queries, k) -> list of id lists``.

    Each ranker contributes its top ``depth`` passages; the fused top ``k`` is returned.
    """

    def __init__(self, bm25: BM25, dense: DenseRetriever, depth: int = 100, rrf_k: float = 60):
        if bm25.n_docs != len(dense.index):
            raise ValueError(
                f"BM25 indexes {bm25.n_docs} documents but the dense index {len(dense.index)}"
            )
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.bm25, self.dense, self.depth, self.rrf_k = bm25, dense, depth, rrf_k

    @classmethod
    def from_dense(cls, dense: DenseRetriever, **kwargs) -> HybridRetriever:
        """Build the BM25 side from the dense index's own passages."""
        return cls(BM25([tokenize(d) for d in dense.index.documents]), dense, **kwargs)

    def rankings(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The two rankers' top ``depth`` ids: (bm25 (Q, depth), dense (Q, depth))."""
        lexical = np.stack([self.bm25.top_k(tokenize(q), self.depth) for q in queries])
        _, dense = self.dense.retrieve(queries, self.depth)
        return lexical, dense

    def retrieve(self, queries: Sequence[str], k: int = 10) -> list[list[int]]:
        if isinstance(queries, str):
            raise TypeError("retrieve takes a list of queries; wrap a single query in a list")
        lexical, dense = self.rankings(list(queries))
        return fuse(lexical, dense, k, self.rrf_k)


def fuse(lexical: np.ndarray, dense: np.ndarray, k: int, rrf_k: float = 60) -> list[list[int]]:
    """Row-wise RRF of two (Q, depth) id arrays: the fused top ``k`` ids of each query."""
    out = []
    for a, b in zip(lexical.tolist(), dense.tolist()):
        out.append([doc for doc, _ in reciprocal_rank_fusion([a, b], rrf_k)[:k]])
    return out
