"""Turning a trained model into text.

* ``sampling.py``: choosing the next token (greedy, temperature, top-k, top-p);
* ``generate.py``: the autoregressive loop for GPT, with or without the KV cache;
* ``beam_search.py``: greedy and beam search (n-best, length penalty) for encoder-decoder models;
* ``logits_process.py``: repetition control (no repeated n-gram, repetition penalty), for both.
"""

from .beam_search import beam_search, greedy_search
from .generate import generate
from .logits_process import apply_repetition_controls, ban_repeated_ngrams, penalize_repetition
from .sampling import filter_top_k, filter_top_p, sample_next

__all__ = [
    "apply_repetition_controls",
    "ban_repeated_ngrams",
    "beam_search",
    "filter_top_k",
    "filter_top_p",
    "generate",
    "greedy_search",
    "penalize_repetition",
    "sample_next",
]
