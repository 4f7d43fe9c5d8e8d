"""Incremental pair counting: the engine of BPE and WordPiece vocabulary training.

Both trainers see the corpus as distinct *words* (pre-tokenised chunks), each a list of symbol
ids with a frequency. They repeatedly pick an adjacent pair ``(a, b)`` and replace it by a new
symbol ``c`` everywhere. Recounting every pair after each merge costs ``O(corpus)`` per merge;
instead :class:`PairCounts` keeps

* ``counts[(a, b)]`` = sum over words of (occurrences of ``a b`` in the word) * (word frequency)
* ``where[(a, b)]`` = the indices of words that contain (or once contained) ``a b``

and a merge only revisits the words in ``where[(a, b)]``, updating the counts by the difference
between the word's pairs before and after. Worked example, ``words = [[h, u, g]]`` with
frequency 10, merging ``(u, g) -> ug``: pairs before ``{hu: 1, ug: 1}``, after ``{h-ug: 1}``,
so ``counts[hu] -= 10``, ``counts[ug] -= 10``, ``counts[(h, ug)] += 10``; other words untouched.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict


def merge_word(word: list[int], a: int, b: int, c: int) -> list[int]:
    """Replace every non-overlapping ``a b`` in ``word`` by ``c``, left to right.

    >>> merge_word([1, 1, 1], 1, 1, 9)
    [9, 1]
    """
    out, i, n = [], 0, len(word)
    while i < n:
        if i < n - 1 and word[i] == a and word[i + 1] == b:
            out.append(c)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


class PairCounts:
    """Adjacent-pair counts of a weighted word list, kept exact under merges."""

    def __init__(self, words: list[list[int]], freqs: list[int], track_symbols: bool = False):
        self.words = words
        self.freqs = freqs
        self.counts: dict[tuple[int, int], int] = defaultdict(int)
        self.where: dict[tuple[int, int], set[int]] = defaultdict(set)
        for wi, (w, f) in enumerate(zip(words, freqs)):
            for pair in zip(w, w[1:]):
                self.counts[pair] += f
                self.where[pair].add(wi)
        # WordPiece's score also needs each symbol's own (weighted) count.
        self.symbols: Counter | None = None
        if track_symbols:
            self.symbols = Counter()
            for w, f in zip(words, freqs):
                for s in w:
                    self.symbols[s] += f

    def merge(self, pair: tuple[int, int], new_id: int) -> set[tuple[int, int]]:
        """Merge ``pair`` into ``new_id`` in every word; return the pairs whose count changed."""
        a, b = pair
        changed = set()
        for wi in self.where.pop(pair, ()):
            word = self.words[wi]
            new = merge_word(word, a, b, new_id)
            if len(new) == len(word):  # stale entry: the pair left this word earlier
                continue
            f = self.freqs[wi]
            delta = Counter(zip(new, new[1:]))
            delta.subtract(Counter(zip(word, word[1:])))
            for p, d in delta.items():
                if d:
                    self.counts[p] += d * f
                    changed.add(p)
                    if d > 0:
                        self.where[p].add(wi)
            if self.symbols is not None:  # each merge: one a and one b become one new_id
                n = len(word) - len(new)
                self.symbols[a] -= n * f
                self.symbols[b] -= n * f
                self.symbols[new_id] += n * f
            self.words[wi] = new
        for p in changed:
            if self.counts[p] <= 0:
                del self.counts[p]
        self.counts.pop(pair, None)
        return changed


class MaxHeap:
    """The pair with the highest count, ties broken by the smallest ids (deterministic).

    Lazy deletion: every count change pushes a fresh entry; a popped entry whose count no
    longer matches ``counts`` is stale and skipped.
    """

    def __init__(self, counts: dict[tuple[int, int], int]):
        self.counts = counts
        self.heap = [(-c, p) for p, c in counts.items()]
        heapq.heapify(self.heap)

    def update(self, pairs) -> None:
        for p in pairs:
            c = self.counts.get(p, 0)
            if c > 0:
                heapq.heappush(self.heap, (-c, p))

    def pop(self) -> tuple[tuple[int, int], int] | None:
        """Remove and return ``(pair, count)`` of the best pair, or None when none is left."""
        while self.heap:
            neg, p = heapq.heappop(self.heap)
            if self.counts.get(p, 0) == -neg:
                return p, -neg
        return None
