"""Learning a WordPiece vocabulary from a corpus.

Like BPE, WordPiece starts from characters and merges adjacent pairs, but it does not take the
most *frequent* pair: it takes the pair whose merge most increases the likelihood of the corpus
under a unigram model (Schuster & Nakajima 2012). With ``n`` the symbol counts and ``N`` their
total, merging ``a b`` into a new symbol raises the log-likelihood by about

    score(a, b) = n(a b) * log( n(a b) * N / (n(a) * n(b)) )          score="likelihood"

a count times a pointwise mutual information: frequent pairs that occur together more often
than chance win. ``score="pmi"`` drops the leading count, ``n(a b) / (n(a) * n(b))`` (the
form in the Hugging Face course); it favours rare pairs, so a small corpus gets long rare
words before ``the``. ``N`` is fixed at its starting value, so a merge only changes the scores
of pairs that contain ``a``, ``b`` or the new symbol, and a lazy heap finds the best pair.

Words are written as their first character then ``##``-prefixed continuation characters
(``"hug"`` -> ``h ##u ##g``); merging ``h`` + ``##u`` gives ``hu``, ``##u`` + ``##g`` gives
``##ug``. The vocabulary: BERT's five special tokens, every character seen (in both forms as
they occur), then the merged tokens in the order learned. Encoding with the result uses
BERT's greedy longest match (not the merges), exactly as for a downloaded ``vocab.txt``.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from .bert_basic import basic_tokenize
from .merging import PairCounts

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class ScoreHeap:
    """Max-heap of pair scores (ties: higher count, then smaller ids) with lazy deletion."""

    def __init__(self, pairs: PairCounts, method: str):
        if method not in ("likelihood", "pmi"):
            raise ValueError(f"score must be 'likelihood' or 'pmi', got {method!r}")
        self.pairs, self.method = pairs, method
        self.total = sum(pairs.symbols.values())
        self.heap: list = []
        self.pairs_of: dict[int, set] = defaultdict(set)  # symbol -> pairs that contain it
        self.push(list(pairs.counts))

    def key(self, pair):
        n = self.pairs.counts.get(pair, 0)
        if n == 0:
            return None
        a, b = pair
        ratio = n / (self.pairs.symbols[a] * self.pairs.symbols[b])
        score = ratio if self.method == "pmi" else n * math.log(ratio * self.total)
        return (-score, -n, a, b)

    def push(self, pairs) -> None:
        for p in pairs:
            self.pairs_of[p[0]].add(p)
            self.pairs_of[p[1]].add(p)
            k = self.key(p)
            if k is not None:
                heapq.heappush(self.heap, k)

    def pop(self, min_frequency: int):
        """The best pair with count >= min_frequency, or None."""
        while self.heap:
            k = heapq.heappop(self.heap)
            pair = (k[2], k[3])
            if k == self.key(pair) and -k[1] >= min_frequency:
                return pair
        return None

    def after_merge(self, a: int, b: int, c: int, changed) -> None:
        """Re-score every pair containing a, b or c: their counts or symbol counts moved."""
        self.push(changed)
        self.push(self.pairs_of[a] | self.pairs_of[b] | self.pairs_of[c])


def train_wordpiece(
    texts: str | Iterable[str],
    vocab_size: int,
    lowercase: bool = True,
    min_frequency: int = 2,
    max_input_chars_per_word: int = 100,
    score: str = "likelihood",
) -> list[str]:
    """Return the vocabulary (``vocab.txt`` order) learned from ``texts``."""
    if isinstance(texts, str):
        texts = [texts]
    word_counts: Counter = Counter()
    for text in texts:
        word_counts.update(basic_tokenize(text, lowercase))
    word_counts = Counter(
        {w: n for w, n in word_counts.items() if len(w) <= max_input_chars_per_word}
    )

    # Characters: first-of-word form and "##" continuation form, sorted for stable ids.
    alphabet = set()
    for w in word_counts:
        alphabet.add(w[0])
        alphabet.update("##" + c for c in w[1:])
    tokens = SPECIALS + sorted(alphabet)
    if vocab_size < len(tokens):
        raise ValueError(
            f"vocab_size={vocab_size} cannot hold the {len(SPECIALS)} special tokens and the "
            f"{len(alphabet)} characters of the corpus; use at least {len(tokens)}"
        )
    token_id = {t: i for i, t in enumerate(tokens)}
    words = [[token_id[w[0]]] + [token_id["##" + c] for c in w[1:]] for w in word_counts]
    pairs = PairCounts(words, list(word_counts.values()), track_symbols=True)
    heap = ScoreHeap(pairs, score)

    while len(tokens) < vocab_size:
        best = heap.pop(min_frequency)
        if best is None:
            break
        a, b = best
        new = tokens[a] + tokens[b][2:]  # "##u" + "##g" -> "##ug"; "h" + "##u" -> "hu"
        if new not in token_id:
            token_id[new] = len(tokens)
            tokens.append(new)
        changed = pairs.merge(best, token_id[new])
        heap.after_merge(a, b, token_id[new], changed)
    return tokens
