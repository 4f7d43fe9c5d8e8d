"""Passage retrieval: lexical BM25 (Lucene's formula), dense MiniLM embeddings, and their
reciprocal-rank fusion; knowledge-base files in, indexes saved as safetensors."""

from .bm25 import BM25
from .dense import DenseIndex, DenseRetriever, encoder_fingerprint, model_name, top_k
from .documents import read_documents
from .hybrid import HybridRetriever, fuse, reciprocal_rank_fusion, tokenize

__all__ = [
    "BM25",
    "DenseIndex",
    "DenseRetriever",
    "HybridRetriever",
    "encoder_fingerprint",
    "fuse",
    "model_name",
    "read_documents",
    "reciprocal_rank_fusion",
    "tokenize",
    "top_k",
]
