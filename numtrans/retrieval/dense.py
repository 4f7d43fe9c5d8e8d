"""Dense retrieval: sentence embeddings, cosine similarity, exact top-k in NumPy.

A knowledge base of N passages is embedded once by a sentence encoder (all-MiniLM-L6-v2 through
``numtrans.models.SentenceEncoder``) into ``E`` (N, D), float32, every row L2-normalised. A batch
of Q queries embedded the same way, ``q`` (Q, D), is scored against every passage::

    scores = q @ E.T          (Q, N)      cosine similarity, since ||q_i|| = ||E_j|| = 1

and the k best passages of each query are found exactly (no approximate index): ``np.argpartition``
picks the k largest of each row in O(N), then only those k are sorted. Ties go to the passage
with the lower index, as a stable ``argsort`` of ``-scores`` would.

An index is saved as one safetensors file (written atomically, ``numtrans.io``) holding

* ``embeddings`` (N, D) float32;
* ``documents_utf8`` (bytes,) uint8 and ``document_offsets`` (N + 1,) int64: the passages' texts,
  passage i being ``documents_utf8[offsets[i]:offsets[i + 1]]`` decoded as UTF-8 (tensors, not
  the header, so a large knowledge base is no problem for the header's size limit);
* metadata ``model`` (a readable name) and ``model_sha256`` (a hash of the encoder's weights).

Embeddings from two different models live in unrelated spaces: comparing them gives a silent
wrong answer. :class:`DenseRetriever` therefore checks the encoder's weight hash against the
index's and refuses another model with a one-line ValueError naming both.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from ..io import atomic_write

FORMAT = "numtrans-dense-index/1"


def encoder_fingerprint(encoder) -> str:
    """sha256 (hex) of an encoder's weights: every state-dict name, dtype, shape and value.

    The config or the safetensors header alone would not tell a fine-tuned MiniLM from the
    original (same names, same shapes); the values do. Hashing MiniLM's 90 MB takes ~0.1 s.
    """
    digest = hashlib.sha256()
    for name, value in encoder.model.state_dict().items():
        value = np.ascontiguousarray(value)
        digest.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        digest.update(value.tobytes())
    digest.update(f"max_seq_length={encoder.max_seq_length}".encode())
    return digest.hexdigest()


def model_name(directory: str) -> str:
    """A readable name for a model directory: its last two path parts (``.../all-MiniLM/model``)."""
    parts = os.path.normpath(os.path.abspath(directory)).split(os.sep)
    return "/".join(parts[-2:])


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)  # a zero row stays zero


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest of each row of ``scores`` (Q, N): ``(values (Q, k), indices (Q, k))``,
    best first, ties to the lower index (equal to ``np.argsort(-scores, kind="stable")[:, :k]``).
    """
    q, n = scores.shape
    k = min(k, n)
    neg = -scores
    if k < n:
        cand = np.argpartition(neg, k - 1, axis=1)[:, :k]  # (Q, k) the k best, unordered
        # argpartition breaks ties at the k-th value arbitrarily: rows with a tie across the
        # boundary are redone with a stable sort so the answer is always the same.
        kth = np.take_along_axis(neg, cand, axis=1).max(axis=1, keepdims=True)  # (Q, 1)
        tied = np.flatnonzero((neg <= kth).sum(axis=1) > k)
        for row in tied:
            cand[row] = np.argsort(neg[row], kind="stable")[:k]
    else:
        cand = np.broadcast_to(np.arange(n), (q, n)).copy()
    vals = np.take_along_axis(neg, cand, axis=1)
    order = np.lexsort((cand, vals), axis=-1)  # by score, then by index
    idx = np.take_along_axis(cand, order, axis=1)
    return np.take_along_axis(scores, idx, axis=1), idx


class DenseIndex:
    """Passages with their embeddings: ``DenseIndex(embeddings (N, D), documents, model, sha)``.

    Rows of ``embeddings`` are L2-normalised on the way in, so ``search`` scores are cosines.
    """

    def __init__(self, embeddings, documents, model: str = "", model_sha256: str = ""):
        emb = np.asarray(embeddings, dtype=np.float32)
        documents = list(documents)
        if emb.ndim != 2 or emb.shape[0] == 0:
            raise ValueError(f"embeddings must be a non-empty (N, D) array, got shape {emb.shape}")
        if len(documents) != emb.shape[0]:
            raise ValueError(f"{emb.shape[0]} embeddings but {len(documents)} documents")
        if not all(isinstance(d, str) for d in documents):
            raise TypeError("documents must be strings")
        if not np.isfinite(emb).all():
            raise ValueError("embeddings contain NaN or infinity")
        self.embeddings = _normalise(emb)
        self.documents = documents
        self.model = model
        self.model_sha256 = model_sha256

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def dimension(self) -> int:
        return self.embeddings.shape[1]

    @classmethod
    def build(cls, encoder, documents, model: str = "", batch_size: int = 32) -> DenseIndex:
        """Embed ``documents`` with ``encoder`` (a ``SentenceEncoder``) and index them."""
        documents = list(documents)
        if not documents:
            raise ValueError("no documents to index")
        emb = encoder.encode(documents, batch_size=batch_size)
        return cls(emb, documents, model, encoder_fingerprint(encoder))

    def search(self, query_embeddings, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Cosine top-k for (Q, D) query embeddings (or one (D,) query): (scores, ids), (Q, k)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        q = np.asarray(query_embeddings, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self.dimension:
            raise ValueError(f"query embeddings must be (Q, {self.dimension}), got shape {q.shape}")
        return top_k(_normalise(q) @ self.embeddings.T, int(k))

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> None:
        """One safetensors file, written atomically (see the module docstring for its layout)."""
        encoded = [d.encode("utf-8") for d in self.documents]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(b) for b in encoded])
        tensors = {
            "embeddings": self.embeddings,
            "documents_utf8": np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8).copy(),
            "document_offsets": offsets,
        }
        meta = {"format": FORMAT, "model": self.model, "model_sha256": self.model_sha256}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))

    @classmethod
    def load(cls, path: str | os.PathLike) -> DenseIndex:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no index file {path!r}")
        try:
            with safe_open(path, framework="numpy") as f:
                meta = f.metadata() or {}
                if meta.get("format") != FORMAT:
                    raise ValueError(
                        f"{path}: not a numtrans dense index (format {meta.get('format')!r})"
                    )
                emb = f.get_tensor("embeddings")
                blob = f.get_tensor("documents_utf8").tobytes()
                offsets = f.get_tensor("document_offsets")
        except ValueError:
            raise
        except Exception as exc:  # safetensors raises its own errors for a damaged file
            raise ValueError(f"{path}: not a readable safetensors index ({exc})") from None
        docs = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:])]
        return cls(emb, docs, meta.get("model", ""), meta.get("model_sha256", ""))

    def check_model(self, model: str, model_sha256: str) -> None:
        """Raise a one-line ValueError if the index was built with another encoder."""
        if self.model_sha256 and model_sha256 != self.model_sha256:
            raise ValueError(
                f"the index was built with model {self.model!r} (weights sha256 "
                f"{self.model_sha256[:12]}) but the query encoder is {model!r} "
                f"(sha256 {model_sha256[:12]}): rebuild the index or use the same model"
            )


class DenseRetriever:
    """An encoder and an index built with it: ``retrieve(queries, k) -> (scores, ids)``."""

    def __init__(self, encoder, index: DenseIndex, model: str = ""):
        index.check_model(model, encoder_fingerprint(encoder))
        self.encoder = encoder
        self.index = index

    def retrieve(self, queries, k: int = 10, batch_size: int = 64):
        """(scores (Q, k), ids (Q, k)) for a list of query strings."""
        if isinstance(queries, str):
            raise TypeError("retrieve takes a list of queries; wrap a single query in a list")
        return self.index.search(self.encoder.encode(list(queries), batch_size=batch_size), k)
