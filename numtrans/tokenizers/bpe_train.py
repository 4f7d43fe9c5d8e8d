"""Training byte-level BPE: learn merges from a corpus, incrementally.

Algorithm (Sennrich et al. 2016, on bytes as in GPT-2):

1. cut the corpus into chunks with GPT-2's regex and count distinct chunks
   (``" the"`` appears 20,000 times but is processed once, with weight 20,000);
2. write each chunk as its byte tokens; count every adjacent pair, weighted;
3. repeat: take the most frequent pair ``(a, b)`` (ties: smallest ids), add the token
   ``a + b``, record the merge, and replace the pair in every chunk that contains it.

Step 3 only revisits the chunks holding the pair and adjusts their pair counts
(:class:`.merging.PairCounts`); a heap with lazy deletion finds the top pair
(:class:`.merging.MaxHeap`). So 4,000 merges on 1 MB of text take seconds, not the
``4,000 x corpus`` of recounting (see ``benchmarks/bpe_training.py``).

If two merges spell the same string (``ab + c`` and ``a + bc``), the second reuses the first
one's token id, as in the ``tokenizers`` library; the merge list still records both.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence

from .merging import MaxHeap, PairCounts
from .pretokenize import bytes_to_unicode, pre_tokenize


def count_chunks(texts: str | Iterable[str], special_tokens: Sequence[str] = ()) -> Counter:
    """Frequencies of GPT-2 chunks in ``texts``; special tokens are cut out, never learned."""
    if isinstance(texts, str):
        texts = [texts]
    splitter = None
    if special_tokens:
        splitter = re.compile("|".join(re.escape(t) for t in special_tokens))
    counts: Counter = Counter()
    for text in texts:
        for part in splitter.split(text) if splitter else [text]:
            counts.update(pre_tokenize(part))
    return counts


def train_bpe(
    texts: str | Iterable[str],
    vocab_size: int,
    special_tokens: Sequence[str] = (),
    min_frequency: int = 2,
    verbose: bool = False,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Return ``(tokens, merges)``: tokens = 256 bytes + merged tokens + special tokens."""
    byte_chars = list(bytes_to_unicode().values())  # GPT-2's order: '!' has id 0
    if vocab_size < len(byte_chars) + len(special_tokens):
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the 256 byte tokens + "
            f"{len(special_tokens)} special tokens"
        )
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be >= 1, got {min_frequency}")
    start = time.perf_counter()
    chunk_counts = count_chunks(texts, special_tokens)
    byte_id = {b: i for i, b in enumerate(bytes_to_unicode())}
    words = [[byte_id[b] for b in c.encode("utf-8", "surrogatepass")] for c in chunk_counts]
    pairs = PairCounts(words, list(chunk_counts.values()))
    heap = MaxHeap(pairs.counts)

    tokens = byte_chars[:]
    token_id = {t: i for i, t in enumerate(tokens)}
    merges: list[tuple[str, str]] = []
    n_target = vocab_size - len(special_tokens)
    while len(tokens) < n_target:
        top = heap.pop()
        if top is None or top[1] < min_frequency:
            break
        (a, b), _ = top
        new = tokens[a] + tokens[b]
        if new not in token_id:
            token_id[new] = len(tokens)
            tokens.append(new)
        merges.append((tokens[a], tokens[b]))
        heap.update(pairs.merge((a, b), token_id[new]))
        if verbose and len(merges) % 500 == 0:
            print(f"{len(merges)} merges, {time.perf_counter() - start:.1f} s")
    tokens += [t for t in special_tokens if t not in token_id]
    return tokens, merges
