"""Incremental pair counting: the engine of BPE and WordPiece vocabulary training.

Both trainers see the corpus as distinct *words* (pre-tokenised chunks), each a list of symbol
ids with a frequency. They repeatedly pick an adjacent pair ``(a, b)`` and replace it by a new
symbol ``c`` everywhere. Recounting every pair after each merge costs ``O(corpus)`` per merge;
instead :class:`PairCounts` keeps

* ``counts[(a, b)]`` = sum over words of (occurrences of ``a b`` in the word) * (word frequency)
* ``where[(a, b)]`` = the indices of words that contain (or once contained) ``a b``

and a merge only revisits the words in ``where[(a, b)]``, adjusting the counts of the pairs
next to each merged occurrence. Worked example, ``words = [[h, u, g]]`` with frequency 10,
merging ``(u, g) -> ug``: ``counts[(u, g)] -= 10``, ``counts[(h, u)] -= 10``,
``counts[(h, ug)] += 10``; the words without ``u g`` are not even looked at.
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
        """Merge ``pair`` into ``new_id`` in every word; return the pairs whose count changed.

        Each occurrence ``x a b y`` -> ``x c y`` only changes the pairs around it:
        ``(a, b)``, ``(x, a) -> (x, c)`` and ``(b, y) -> (c, y)``. The left neighbour ``x`` is
        read from the merged output, so in ``a b a b -> c c`` the ``(c, a)`` added by the
        first merge is taken back by the second, which adds ``(c, c)``.
        """
        a, b = pair
        c = new_id
        counts, where = self.counts, self.where
        changed = {pair}
        for wi in where.pop(pair, ()):
            word, f = self.words[wi], self.freqs[wi]
            out, i, n = [], 0, len(word)
            while i < n:
                if i < n - 1 and word[i] == a and word[i + 1] == b:
                    counts[pair] -= f
                    if out:
                        left = out[-1]
                        counts[left, a] -= f
                        counts[left, c] += f
                        changed.update(((left, a), (left, c)))
                        where[left, c].add(wi)
                    if i + 2 < n:
                        right = word[i + 2]
                        counts[b, right] -= f
                        counts[c, right] += f
                        changed.update(((b, right), (c, right)))
                        where[c, right].add(wi)
                    out.append(c)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            if self.symbols is not None and len(out) < n:  # one a and one b become one c
                k = n - len(out)
                self.symbols[a] -= k * f
                self.symbols[b] -= k * f
                self.symbols[c] += k * f
            self.words[wi] = out
        for p in changed:
            if counts.get(p, 0) <= 0:
                counts.pop(p, None)
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
