"""Summarisation: extractive (lead-k, centroid, TextRank) and abstractive (an encoder-decoder).

    from numtrans.summarization import ExtractiveSummarizer, lead_k, split_sentences

    lead_k(article, 3)                                        # the first three sentences
    ExtractiveSummarizer.from_pretrained(minilm_dir, "textrank").summarize(article, k=1)
    AbstractiveSummarizer.load("runs/csl-title").summarize([abstract])   # a written title

* ``sentences.py``, ``extractive.py``: sentence splitting and sentence selection;
* ``denoising.py``: BART's noise (sentence shuffling, span masking) for pretraining;
* ``abstractive.py``: ``AbstractiveSummarizer``, a saved seq2seq model with beam search;
* ``train.py`` (a recipe, not imported here): CSL title generation, with or without
  denoising pretraining.

Scores are measured with ``numtrans.metrics.rouge`` (``benchmarks/summarization.py``).
"""

from .abstractive import AbstractiveSummarizer, char_tokenizer, is_summarizer_dir
from .denoising import (
    DenoisingDataset,
    chunk_text,
    noise_document,
    shuffle_sentences,
    span_mask,
    split_zh_sentences,
)
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
    "AbstractiveSummarizer",
    "DenoisingDataset",
    "char_tokenizer",
    "chunk_text",
    "is_summarizer_dir",
    "noise_document",
    "shuffle_sentences",
    "span_mask",
    "split_zh_sentences",
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
