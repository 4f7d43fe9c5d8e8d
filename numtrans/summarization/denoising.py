"""BART-style denoising: corrupt a text, and train the encoder-decoder to write the original back.

BART (Lewis et al., 2020) pretrains a sequence-to-sequence Transformer on unlabelled text by
*reconstruction*: the encoder reads a noised document, the decoder must produce the clean one.
Of the noising functions the paper tried, two together worked best, and they are the two here:

* **sentence permutation** -- the document's sentences are shuffled, so the decoder must learn
  which sentence comes first (the skill a title or a summary needs: find what leads);
* **text infilling** -- spans of tokens are cut out, each replaced by a *single* ``<mask>``; span
  lengths are drawn from a Poisson distribution (lambda = 3), until ``mask_ratio`` of the tokens
  (30% in BART) are covered. One ``<mask>`` per span means the model must also infer *how many*
  tokens are missing, unlike BERT's one-mask-per-token::

      clean    a b c d e f g h i j          (10 tokens, mask_ratio 0.3 -> 3 covered)
      spans    c d        (length 2)   h   (length 1)
      noised   a b <mask> e f g <mask> i j

Everything is on token ids (a character tokenizer for Chinese: one id per character), with a
``numpy.random.Generator`` so that the same seed gives the same corruption.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# a sentence ends at a Chinese full stop, ! or ?, or at an ASCII "." that is not a decimal point
# (CSL abstracts mix "。" and ".": "...的数学模型.仿真结果表明" but also "3.5倍")
_ZH_SENTENCE = re.compile(r".*?(?:[。！？!?]+[”’」』）)]*|(?<!\d)\.(?!\d)|$)", re.S)


def split_zh_sentences(text: str) -> list[str]:
    """The sentences of a Chinese text, punctuation kept, nothing lost:
    ``"".join(split_zh_sentences(t)) == t``. Splits after ``。！？!?`` (with closing quotes) and
    after a ``.`` that is not between digits."""
    return [m.group(0) for m in _ZH_SENTENCE.finditer(text) if m.group(0)]


def shuffle_sentences(sentences: Sequence, rng: np.random.Generator) -> list:
    """A random permutation of ``sentences`` (the same multiset, a new order)."""
    return [sentences[i] for i in rng.permutation(len(sentences))]


def span_mask(
    ids: Sequence[int],
    mask_id: int,
    rng: np.random.Generator,
    mask_ratio: float = 0.3,
    poisson_lambda: float = 3.0,
) -> tuple[list[int], np.ndarray]:
    """Text infilling: ``(noised ids, covered)`` where ``covered`` (len(ids),) is True for the
    ``round(mask_ratio * len(ids))`` tokens that were cut out.

    Spans start at random uncovered positions; a span's length is Poisson(``poisson_lambda``),
    cut short where it would exceed the budget or run into an earlier span. A drawn length of 0
    counts as 1 (BART would insert a ``<mask>`` that hides nothing; left out here). Each maximal
    run of covered tokens then becomes one ``<mask>``, so adjacent spans merge."""
    if not 0.0 <= mask_ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")
    if poisson_lambda <= 0:
        raise ValueError(f"poisson_lambda must be > 0, got {poisson_lambda}")
    n = len(ids)
    budget = int(round(mask_ratio * n))
    covered = np.zeros(n, dtype=bool)
    while (left := budget - int(covered.sum())) > 0:
        free = np.flatnonzero(~covered)
        start = int(free[rng.integers(len(free))])
        length = min(max(1, int(rng.poisson(poisson_lambda))), left)
        stop = start
        while stop < n and stop - start < length and not covered[stop]:
            stop += 1
        covered[start:stop] = True
    # keep the uncovered tokens; a covered token that starts a run becomes the run's <mask>
    run_start = covered & ~np.concatenate([[False], covered[:-1]])
    out = [
        mask_id if run_start[i] else int(ids[i]) for i in range(n) if run_start[i] or not covered[i]
    ]
    return out, covered


def noise_document(
    text: str,
    tokenizer,
    mask_id: int,
    rng: np.random.Generator,
    mask_ratio: float = 0.3,
    poisson_lambda: float = 3.0,
    permute_sentences: bool = True,
) -> tuple[list[int], list[int]]:
    """``(noised source ids, clean target ids)`` of one document: sentences shuffled, then
    spans masked (``tokenizer.encode`` gives the ids)."""
    clean = tokenizer.encode(text)
    sentences = split_zh_sentences(text)
    if permute_sentences and len(sentences) > 1:
        text = "".join(shuffle_sentences(sentences, rng))
    noised, _ = span_mask(tokenizer.encode(text), mask_id, rng, mask_ratio, poisson_lambda)
    return noised, clean


def chunk_text(texts: Sequence[str], max_chars: int = 128) -> list[str]:
    """Pack ``texts`` (lines, paragraphs, short sentences) into documents of at most
    ``max_chars`` characters, cut at sentence ends, so that each has sentences to shuffle.
    A single sentence longer than ``max_chars`` is cut into pieces."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    docs, current = [], ""
    for text in texts:
        for sentence in split_zh_sentences(text.strip()):
            while len(sentence) > max_chars:
                if current:
                    docs.append(current)
                    current = ""
                docs.append(sentence[:max_chars])
                sentence = sentence[max_chars:]
            if len(current) + len(sentence) > max_chars:
                docs.append(current)
                current = ""
            current += sentence
    if current:
        docs.append(current)
    return [d for d in docs if d.strip()]


class DenoisingDataset:
    """Reconstruction examples for a ``Seq2SeqTransformer``, in ``TranslationDataset``'s layout:
    ``src_ids`` = noised + ``<eos>``, ``tgt_ids`` = ``<bos>`` + clean, ``labels`` = clean +
    ``<eos>`` (so ``translation.BucketBatcher`` batches it).

    ``copies`` noised versions of each document are drawn once, here: the batcher sorts
    examples by length, so the noise cannot change from epoch to epoch (BART re-noises; with
    a few copies the model still sees each text corrupted several ways)."""

    def __init__(self, documents: Sequence[str], tokenizer, rng: np.random.Generator,
                 mask_ratio: float = 0.3, poisson_lambda: float = 3.0, copies: int = 1,
                 max_length: int = 128, mask_token: str = "<mask>", bos_token: str = "<bos>",
                 eos_token: str = "<eos>"):  # fmt: skip
        vocab = tokenizer.vocab
        if not {mask_token, bos_token, eos_token} <= set(vocab):
            raise ValueError(f"the tokenizer needs {mask_token}, {bos_token} and {eos_token}")
        mask_id, bos, eos = vocab[mask_token], vocab[bos_token], vocab[eos_token]
        self.examples = []
        for _ in range(copies):
            for doc in documents:
                src, tgt = noise_document(doc, tokenizer, mask_id, rng, mask_ratio, poisson_lambda)
                src, tgt = src[: max_length - 1], tgt[: max_length - 1]
                self.examples.append({
                    "src_ids": np.array(src + [eos], dtype=np.int64),
                    "tgt_ids": np.array([bos] + tgt, dtype=np.int64),
                    "labels": np.array(tgt + [eos], dtype=np.int64),
                })  # fmt: skip
        if not self.examples:
            raise ValueError("no documents to noise")

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]
