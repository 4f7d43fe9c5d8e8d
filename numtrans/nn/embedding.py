"""``Embedding``: a lookup table from token ids to vectors.

    ids: (...) integers in [0, num_embeddings)  ->  (..., embedding_dim)
    weight: (num_embeddings, embedding_dim), row i is the vector of token i

Equivalent to one_hot(ids) @ weight, without building the one-hot matrix. Initialised N(0, 1)
like PyTorch. ``padding_idx``: that row starts at zero and never receives a gradient, so a
padding token stays a zero vector.
"""

from __future__ import annotations

import numpy as np

from ..functional.layers import embedding
from ..tensor import get_default_dtype
from . import init
from .module import Module, Parameter


class Embedding(Module):
    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, dtype=None
    ):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx {padding_idx} is outside [0, {num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        dtype = dtype or get_default_dtype()
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, ids):
        return embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
