"""Data: from raw text to batches of NumPy arrays (no autograd here).

* corpora: :func:`load_corpus` (bundled real text, or your own .txt/.tsv), :func:`corpus_info`;
* datasets: :class:`CausalLMDataset` (windows), :class:`TextClassificationDataset`,
  :class:`TranslationDataset`, :func:`train_val_split`, :func:`random_split`;
* batching: :class:`Collator` (padding, masks, labels padded with ``IGNORE_INDEX = -100``),
  :func:`mask_tokens` / :class:`MLMCollator` (BERT masking), :class:`DataLoader`.
"""

from .collate import IGNORE_INDEX, Collator, causal_lm_example, pad_sequences
from .corpus import CORPORA, corpus_info, list_corpora, load_corpus, parse_tsv
from .datasets import (
    CausalLMDataset,
    TextClassificationDataset,
    TranslationDataset,
    random_split,
    train_val_split,
)
from .loader import DataLoader, default_collate
from .masking import MLMCollator, mask_tokens

__all__ = [
    "CORPORA",
    "IGNORE_INDEX",
    "CausalLMDataset",
    "Collator",
    "DataLoader",
    "MLMCollator",
    "TextClassificationDataset",
    "TranslationDataset",
    "causal_lm_example",
    "corpus_info",
    "default_collate",
    "list_corpora",
    "load_corpus",
    "mask_tokens",
    "pad_sequences",
    "parse_tsv",
    "random_split",
    "train_val_split",
]
