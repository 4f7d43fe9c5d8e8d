"""A bag-of-words baseline: logistic regression on word and word-pair counts, in NumPy.

Every text becomes a vector x of V features, x_j = 1 if feature j (a lower-cased word, or two
adjacent words) occurs in it, scaled by its inverse document frequency and L2-normalised.
Multinomial logistic regression then learns W (V, K) and b (K,):

    p(y | x) = softmax(x W + b)
    loss = -(1/N) sum_i log p(y_i | x_i) + (l2 / 2) ||W||^2
    dW = X^T (P - Y) / N + l2 W,   db = mean(P - Y)       (P: probabilities, Y: one-hot labels)

minimised by full-batch gradient descent with momentum. Word order beyond pairs is invisible to
it ("not good" survives only as the pair "not good"), which is what the Transformers add.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def features(text: str, bigrams: bool = True) -> list[str]:
    words = WORD.findall(text.lower())
    return words + ([f"{a} {b}" for a, b in zip(words, words[1:])] if bigrams else [])


class BagOfWordsClassifier:
    def __init__(self, min_count: int = 1, l2: float = 1e-4, steps: int = 300, lr: float = 2.0,
                 bigrams: bool = True):  # fmt: skip
        self.min_count, self.l2, self.steps, self.lr, self.bigrams = (
            min_count,
            l2,
            steps,
            lr,
            bigrams,
        )

    def _matrix(self, texts) -> SparseRows:
        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            js = sorted({self.vocab[f] for f in features(text, self.bigrams) if f in self.vocab})
            v = self.idf[js]
            rows += [i] * len(js)
            cols += js
            vals.append(v / max(np.linalg.norm(v), 1e-12))
        vals = np.concatenate(vals) if vals else np.zeros(0)
        return SparseRows(np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), vals,
                          (len(texts), len(self.vocab)))  # fmt: skip

    def fit(self, texts, labels) -> BagOfWordsClassifier:
        """``labels``: int class ids 0..K-1."""
        y = np.asarray(labels, dtype=np.int64)
        df = Counter(f for text in texts for f in set(features(text, self.bigrams)))
        kept = sorted(f for f, n in df.items() if n >= self.min_count)
        self.vocab = {f: j for j, f in enumerate(kept)}
        self.idf = np.log((1 + len(texts)) / (1 + np.array([df[f] for f in kept]))) + 1.0
        X = self._matrix(texts)
        K = int(y.max()) + 1
        Y = np.eye(K)[y]
        self.W, self.b = np.zeros((X.shape[1], K)), np.zeros(K)
        vW, vb = np.zeros_like(self.W), np.zeros_like(self.b)
        for _ in range(self.steps):
            P = softmax(X @ self.W + self.b)
            gW = X.rmatmul(P - Y) / len(y) + self.l2 * self.W
            gb = (P - Y).mean(axis=0)
            vW, vb = 0.9 * vW + gW, 0.9 * vb + gb  # heavy-ball momentum
            self.W -= self.lr * vW
            self.b -= self.lr * vb
        return self

    def predict_proba(self, texts) -> np.ndarray:
        return softmax(self._matrix(texts) @ self.W + self.b)

    def predict(self, texts) -> np.ndarray:
        return self.predict_proba(texts).argmax(axis=1)


class SparseRows:
    """A sparse (N, V) matrix as (row, column, value) triples: most texts use few features."""

    def __init__(self, rows, cols, vals, shape):
        self.rows, self.cols, self.vals, self.shape = rows, cols, vals, shape

    def __matmul__(self, W: np.ndarray) -> np.ndarray:  # (N, V) @ (V, K) -> (N, K)
        contrib = self.vals[:, None] * W[self.cols]  # one row per stored entry, summed by row
        return np.stack([np.bincount(self.rows, c, self.shape[0]) for c in contrib.T], axis=1)

    def rmatmul(self, G: np.ndarray) -> np.ndarray:  # X^T G: (V, N) @ (N, K) -> (V, K)
        contrib = self.vals[:, None] * G[self.rows]
        return np.stack([np.bincount(self.cols, c, self.shape[1]) for c in contrib.T], axis=1)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
