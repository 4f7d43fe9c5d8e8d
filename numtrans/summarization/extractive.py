"""Extractive summaries: pick k sentences of the document and print them in document order.

Three ways to choose among the N sentences of a document (``E`` = their embeddings, (N, C), one
row per sentence, as ``SentenceEncoder.encode`` returns them):

* **lead-k** — the first k sentences. News puts the gist first, so this is the baseline every
  summariser is measured against (it needs no model).
* **centroid** — ``c = mean_i E_i`` (C,) is the document's "topic"; a sentence scores
  ``cos(E_i, c)`` (N,): the sentences most like the whole document win (after Radev et al.
  2004's centroid summariser, with sentence embeddings in place of tf-idf vectors).
* **TextRank** (Mihalcea & Tarau 2004) — a graph with one node per sentence and edge weights
  ``W_ij = max(cos(E_i, E_j), 0)`` for ``i != j`` (N, N); a sentence is central when central
  sentences resemble it. The scores solve

      S_i = (1 - d) + d * sum_j  W_ji / (sum_k W_jk) * S_j          (d = 0.85, the damping)

  i.e. ``S = (1 - d) 1 + d P^T S`` with ``P = W / row sums`` (row-stochastic). This is PageRank:
  ``S / N`` is the eigenvector of ``G = (1 - d)/N 1 1^T + d P^T`` for eigenvalue 1, found by
  power iteration (repeat the update until no score moves by more than ``tol``; the error
  shrinks by a factor d each step). A sentence like no other (a zero row of W, a "dangling"
  node) spreads its vote evenly over all N sentences, PageRank's convention, so ``P`` stays
  stochastic and ``sum(S) = N``.

:func:`top_k_in_order` keeps the k best (ties go to the earlier sentence) and restores document
order, since a summary reads in the order its sentences were written.
"""

from __future__ import annotations

import numpy as np

from .sentences import join_sentences, split_sentences

METHODS = ("lead", "centroid", "textrank")


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int, got {type(k).__name__}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return int(k)


def _sentences_of(text: str) -> list[str]:
    sentences = split_sentences(text)
    if not sentences:
        raise ValueError("the text has no sentences to summarise (it is empty or blank)")
    return sentences


def lead_k(text: str, k: int = 3) -> str:
    """The first ``k`` sentences of ``text`` (all of them when it has fewer)."""
    k = _check_k(k)
    return join_sentences(_sentences_of(text)[:k])


# ----------------------------------------------------------------------------- scores
def _unit_rows(embeddings) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty (N, C) array, got shape {e.shape}")
    if not np.isfinite(e).all():
        raise ValueError("embeddings contain NaN or infinity")
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def centroid_scores(embeddings) -> np.ndarray:
    """(N,) cosine of each sentence embedding with the mean embedding (the centroid)."""
    e = _unit_rows(embeddings)  # (N, C)
    centroid = e.mean(axis=0)  # (C,)
    return (e @ centroid) / max(np.linalg.norm(centroid), 1e-12)


def similarity_graph(embeddings) -> np.ndarray:
    """(N, N) TextRank edge weights: cosine similarity, negatives clipped to 0, zero diagonal."""
    e = _unit_rows(embeddings)
    w = np.clip(e @ e.T, 0.0, None)  # PageRank needs non-negative weights
    np.fill_diagonal(w, 0.0)  # no self-loops: a sentence does not vote for itself
    return w


def transition_matrix(similarity) -> np.ndarray:
    """(N, N) row-stochastic P: each row of W divided by its sum; an all-zero row -> uniform."""
    w = np.asarray(similarity, dtype=np.float64)
    n = w.shape[0]
    out = w.sum(axis=1, keepdims=True)  # (N, 1) each node's total outgoing weight
    return np.where(out > 0, w / np.where(out > 0, out, 1.0), 1.0 / n)


def textrank_scores(
    similarity, damping: float = 0.85, tol: float = 1e-10, max_iter: int = 1000
) -> np.ndarray:
    """(N,) TextRank scores (they sum to N) of a similarity graph, by power iteration."""
    w = np.asarray(similarity, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] == 0:
        raise ValueError(f"similarity must be a non-empty square (N, N) array, got {w.shape}")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("similarity must be finite and non-negative (see similarity_graph)")
    if not 0.0 < damping < 1.0:
        raise ValueError(f"damping must be in (0, 1), got {damping}")
    p_t = transition_matrix(w).T  # (N, N): p_t[i, j] = the share of j's vote that goes to i
    scores = np.ones(w.shape[0])
    for _ in range(max_iter):
        new = (1.0 - damping) + damping * (p_t @ scores)
        if np.abs(new - scores).max() < tol:
            return new
        scores = new
    raise FloatingPointError(f"TextRank did not converge in {max_iter} iterations")


def top_k_in_order(scores, k: int) -> list[int]:
    """Indices of the ``k`` largest scores (earlier sentence first on ties), in document order."""
    k = _check_k(k)
    scores = np.asarray(scores, dtype=np.float64)
    best = np.argsort(-scores, kind="stable")[:k]  # stable: ties keep document order
    return sorted(best.tolist())


def sentence_scores(embeddings, method: str) -> np.ndarray:
    """(N,) scores of ``method`` ("centroid" or "textrank") from the sentence embeddings."""
    if method == "centroid":
        return centroid_scores(embeddings)
    if method == "textrank":
        return textrank_scores(similarity_graph(embeddings))
    raise ValueError(f"method must be 'centroid' or 'textrank', got {method!r}")


# ----------------------------------------------------------------------------- the summariser
class ExtractiveSummarizer:
    """``ExtractiveSummarizer(method, encoder).summarize(text, k) -> str``.

    ``method`` is one of :data:`METHODS`. ``centroid`` and ``textrank`` need ``encoder``:
    anything with ``encode(list_of_str) -> (N, C)``, such as a ``numtrans.models.SentenceEncoder``
    (``from_pretrained`` builds one from all-MiniLM-L6-v2); ``lead`` needs none.
    """

    def __init__(self, method: str = "centroid", encoder=None):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
        if method != "lead" and not callable(getattr(encoder, "encode", None)):
            raise TypeError(f"method {method!r} needs an encoder with an encode(texts) method")
        self.method = method
        self.encoder = encoder

    @classmethod
    def from_pretrained(cls, directory: str, method: str = "centroid") -> ExtractiveSummarizer:
        from ..models.sentence_encoder import SentenceEncoder

        return cls(method, SentenceEncoder.from_pretrained(directory))

    def select(self, sentences: list[str], k: int) -> list[int]:
        """Indices (document order) of the ``k`` sentences kept from ``sentences``."""
        k = _check_k(k)
        if self.method == "lead" or len(sentences) <= k:
            return list(range(min(k, len(sentences))))  # no choice to make: no need to encode
        return top_k_in_order(sentence_scores(self.encoder.encode(sentences), self.method), k)

    def summarize(self, text: str, k: int = 1) -> str:
        sentences = _sentences_of(text)
        return join_sentences([sentences[i] for i in self.select(sentences, k)])
