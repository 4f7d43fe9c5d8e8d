"""Summarisation: sentence splitting and extractive summaries (lead-k, centroid, TextRank).

    from numtrans.summarization import ExtractiveSummarizer, lead_k, split_sentences

    lead_k(article, 3)                                        # the first three sentences
    ExtractiveSummarizer.from_pretrained(minilm_dir, "textrank").summarize(article, k=1)

Scores are measured with ``numtrans.metrics.rouge`` (``benchmarks/summarization.py``).
"""

from .extractive import (
    METHODS,
    ExtractiveSummarizer,
    centroid_scores,
    lead_k,
    sentence_scores,
    similarity_graph,
    textrank_scores,
    top_k_in_order,
    transition_matrix,
)
from .sentences import join_sentences, split_sentences

__all__ = [
    "METHODS",
    "ExtractiveSummarizer",
    "centroid_scores",
    "join_sentences",
    "lead_k",
    "sentence_scores",
    "similarity_graph",
    "split_sentences",
    "textrank_scores",
    "top_k_in_order",
    "transition_matrix",
]
