"""Passage retrieval: lexical BM25 (Lucene's formula)."""

from .bm25 import BM25

__all__ = ["BM25"]
