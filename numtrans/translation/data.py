"""Data for English -> Chinese translation: split, tokenizers, length-bucketed batches.

**Split.** The Tatoeba corpus (``load_corpus("tatoeba")``, 29,155 pairs) lists some English
sentences several times, once per Chinese translation. The split is made over *distinct English
sentences* (a seeded permutation), so a test sentence never appears in training with another
translation; its translations together are the references for BLEU (:func:`reference_streams`).

**Tokenizers** (one per side, separate embeddings, since the two scripts share no tokens):

* English: byte-level BPE (GPT-2's, :class:`~numtrans.tokenizers.ByteBPETokenizer`) with about
  4,000 tokens learned from the training side. Frequent words are one token, rare words split
  into pieces, and no input is ever out of vocabulary (every byte is a token). Case and
  punctuation are kept: they are what the model reads.
* Chinese: one token per character (:class:`~numtrans.tokenizers.CharTokenizer`). Written
  Chinese has no spaces, a character is already a unit of meaning, and the training side has
  only about 2,800 distinct ones, so a character vocabulary is small and needs no word
  segmenter; BLEU's ``zh`` tokenisation also scores Chinese character by character. A
  character never seen in training becomes ``<unk>``.

Both put ``<pad> <unk> <bos> <eos>`` at ids 0..3, so ``pad_idx = 0`` on both sides.

**Batching by length.** Padding a 5-token sentence to the length of a 40-token one wastes 7/8
of the work. Examples are sorted by length once; a batch is a run of neighbours in that order,
starting at a random place (``rng``), as many as fit in ``max_tokens`` *padded* tokens::

    cost(batch) = n_sentences * (longest source + longest target)  <=  max_tokens

so short sentences come in large batches and long ones in small batches, with little padding.
The draw depends only on ``rng``, so the Trainer's checkpointed generator resumes it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data import Collator, TranslationDataset
from ..tokenizers import ByteBPETokenizer, CharTokenizer

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]  # ids 0, 1, 2, 3 in both vocabularies


def split_pairs(
    rows: Sequence[Sequence[str]],
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 0,
) -> tuple[list, list, list]:
    """``(train, valid, test)`` lists of ``(source, target)`` pairs, split by source sentence.

    ``rows``: tuples whose first two fields are source and target (Tatoeba's third field, the
    attribution, is dropped). All pairs of one source sentence land in the same split."""
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise ValueError(
            f"valid_fraction={valid_fraction} and test_fraction={test_fraction} must be >= 0 "
            "and leave some data for training"
        )
    groups: dict[str, list[tuple[str, str]]] = {}
    for n, row in enumerate(rows):
        if len(row) < 2:
            raise ValueError(f"row {n} has {len(row)} field(s); expected (source, target, ...)")
        groups.setdefault(row[0], []).append((row[0], row[1]))
    sources = list(groups)  # first-appearance order: independent of hashing
    order = np.random.default_rng(seed).permutation(len(sources))
    n_test = int(round(len(sources) * test_fraction))
    n_valid = int(round(len(sources) * valid_fraction))
    parts = np.split(order, [n_test, n_test + n_valid])
    test, valid, train = ([p for i in sorted(part) for p in groups[sources[i]]] for part in parts)
    return train, valid, test


def reference_streams(pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[list]]:
    """Distinct sources and their references in sacrebleu's layout.

    Returns ``(sources, streams)`` with ``streams[k][i]`` the k-th reference of ``sources[i]``
    or None (sources with fewer translations), ready for ``corpus_bleu(hyps, streams)``."""
    refs: dict[str, list[str]] = {}
    for src, tgt in pairs:
        refs.setdefault(src, []).append(tgt)
    sources = list(refs)
    depth = max((len(r) for r in refs.values()), default=0)
    streams = [[refs[s][k] if k < len(refs[s]) else None for s in sources] for k in range(depth)]
    return sources, streams


def make_tokenizers(
    train_pairs: Sequence[tuple[str, str]], src_vocab_size: int = 4000, tgt_min_freq: int = 1
) -> tuple[ByteBPETokenizer, CharTokenizer]:
    """Byte-level BPE for the sources, characters for the targets, from the training pairs
    (``(source, target, ...)`` tuples)."""
    if not train_pairs:
        raise ValueError("no training pairs to build the tokenizers from")
    bpe = ByteBPETokenizer.train([p[0] for p in train_pairs], src_vocab_size, SPECIALS)
    # train() appends the special tokens after the bytes and merges; move them to ids 0..3
    tokens = SPECIALS + [t for t in bpe.tokens if t not in SPECIALS]
    src_tok = ByteBPETokenizer(tokens, bpe.merges, SPECIALS, pad_token="<pad>")
    counts: dict[str, int] = {}
    for pair in train_pairs:
        for c in pair[1]:
            counts[c] = counts.get(c, 0) + 1
    chars = sorted(c for c, n in counts.items() if n >= tgt_min_freq)
    tgt_tok = CharTokenizer(chars, SPECIALS)  # <pad> and <unk> take their roles by name
    return src_tok, tgt_tok


def make_dataset(pairs, src_tok, tgt_tok, max_length: int | None = None) -> TranslationDataset:
    """``src_ids`` = source + <eos>, ``tgt_ids`` = <bos> + target, ``labels`` = target + <eos>."""
    return TranslationDataset(pairs, src_tok, tgt_tok, max_length=max_length)


class BucketBatcher:
    """Length-bucketed batches of ``TranslationDataset`` splits, for ``Trainer``.

    ``get_batch(split, rng)`` draws one batch (see the module docstring); ``batches(split)``
    covers a split once, in length order (for evaluation). A batch is the :class:`Collator`'s
    dict: ``src_ids``, ``src_mask``, ``tgt_ids``, ``tgt_mask`` (B, T) with masks 1 = real
    token, and ``labels`` padded with -100."""

    def __init__(self, datasets: dict, max_tokens: int = 4000, max_sentences: int | None = None):
        if max_tokens < 2:
            raise ValueError(f"max_tokens must be >= 2, got {max_tokens}")
        self.datasets, self.max_tokens = datasets, max_tokens
        self.max_sentences = max_sentences
        self.collate = Collator(pad_id=0)
        self.order, self.sorted_lengths = {}, {}
        for split, ds in datasets.items():
            if len(ds) == 0:
                raise ValueError(f"the {split!r} split is empty")
            src = np.array([len(ex["src_ids"]) for ex in ds.examples])
            tgt = np.array([len(ex["tgt_ids"]) for ex in ds.examples])
            order = np.lexsort((tgt, src))  # by source length, then target length
            self.order[split] = order
            self.sorted_lengths[split] = (src[order], tgt[order])

    def _fits(self, n: int, longest_src: int, longest_tgt: int) -> bool:
        if self.max_sentences is not None and n > self.max_sentences:
            return False
        return n == 1 or n * (longest_src + longest_tgt) <= self.max_tokens

    def _run(self, split: str, start: int) -> np.ndarray:
        """The longest run of neighbours around sorted position ``start`` that fits the
        budget: grow to the right, then (near the end of the order) to the left."""
        src, tgt = self.sorted_lengths[split]

        def fits(lo: int, hi: int) -> bool:  # examples lo..hi-1 of the sorted order
            return self._fits(hi - lo, src[lo:hi].max(), tgt[lo:hi].max())

        lo, hi = start, start + 1
        while hi < len(src) and fits(lo, hi + 1):
            hi += 1
        while lo > 0 and fits(lo - 1, hi):
            lo -= 1
        return self.order[split][lo:hi]

    def get_batch(self, split: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if split not in self.datasets:
            raise KeyError(f"unknown split {split!r}; have {sorted(self.datasets)}")
        start = int(rng.integers(len(self.order[split])))
        ds = self.datasets[split]
        return self.collate([ds[int(i)] for i in self._run(split, start)])

    def batches(self, split: str) -> list[np.ndarray]:
        """Index arrays covering ``split`` once, in length order, each within the budget."""
        src, tgt = self.sorted_lengths[split]
        out, start = [], 0
        while start < len(src):
            n = np.arange(1, len(src) - start + 1)  # candidate batch sizes
            cost = n * (np.maximum.accumulate(src[start:]) + np.maximum.accumulate(tgt[start:]))
            ok = cost <= self.max_tokens
            if self.max_sentences is not None:
                ok &= n <= self.max_sentences
            size = len(n) if ok.all() else max(1, int(np.argmin(ok)))  # first size that fails
            out.append(self.order[split][start : start + size])
            start += size
        return out
