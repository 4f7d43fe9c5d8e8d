"""Trainable token rows (``peft``'s ``trainable_token_indices``): a few rows of a frozen token
embedding train in full, e.g. the chat markers a base GPT has never seen.

    W: (V, C) frozen      idx: (n,) token ids      delta: (n, C) trainable, starts at W[idx]
    W_eff = W with row idx[k] replaced by delta[k]
    embedding:   x = W_eff[ids]                (B, T, C)
    tied output: logits = h W_eff^T            (B, T, V)   (GPT's lm_head reads the same rows)

A new token's row has nothing learned to adapt with a low-rank update, so it trains whole;
n * C numbers instead of the table's V * C (4 chat markers x 128 = 512, not 131 072). Both
lookups are one gather from ``table = cat([W, delta])`` (V + n, C) through ``row_map`` (V,):
``row_map = arange(V)`` with ``row_map[idx[k]] = V + k``, so the gradient reaches ``delta`` only.

``TrainableTokens`` wraps an ``Embedding`` (``mode="embedding"``) or the ``Linear`` tied to it
(``mode="linear"``); the two wrappers share one ``adapters`` dict, hence the same ``delta``
Parameters. As ``LoRALinear`` does, they share the base's ``weight`` (names unchanged) and
register the active adapter's ``trainable_tokens_delta``. ``merge()`` writes the rows into
``W`` (an assignment, so merging both tied wrappers is the same as merging one); ``unmerge()``
puts the original rows back.
"""

from __future__ import annotations

import numpy as np

from ..functional.layers import embedding, linear
from ..nn.embedding import Embedding
from ..nn.linear import Linear
from ..nn.module import Module, Parameter
from ..ops.shape import concatenate
from ..tensor import Tensor
from .saved import get_submodule, set_submodule

DELTA = "trainable_tokens_delta"


class TrainableTokens(Module):
    """A frozen ``Embedding`` or tied ``Linear`` whose rows ``idx`` come from a trainable delta."""

    def __init__(self, base, mode: str, adapters: dict | None = None):
        super().__init__()
        object.__setattr__(self, "base_layer", base)  # kept (unregistered) for to_base
        self.mode, self.weight = mode, base.weight  # shared: names and tying stay the same
        if mode == "embedding":
            self.num_embeddings, self.embedding_dim = base.num_embeddings, base.embedding_dim
            self.padding_idx = base.padding_idx
        else:
            self.in_features, self.out_features = base.in_features, base.out_features
            self.bias = base.bias
        self.weight.requires_grad_(False)
        self.tied = adapters is not None  # reads an embedding's rows; it owns none itself
        self.adapters = {} if adapters is None else adapters  # name -> (idx, delta, original)
        self.active, self.merged = None, False

    @property
    def has_active(self) -> bool:
        return self.active in self.adapters

    def add_adapter(self, name: str, indices) -> None:
        idx = np.asarray(sorted({int(i) for i in indices}), dtype=np.int64)
        V = self.weight.shape[0]
        if idx.size == 0 or idx.min() < 0 or idx.max() >= V:
            raise ValueError(f"trainable token ids {idx.tolist()} must be in [0, {V})")
        original = self.weight.data[idx].copy()
        self.adapters[name] = (idx, Parameter(original.copy()), original)

    def set_adapter(self, name: str) -> None:
        if self.merged:
            raise ValueError("unmerge() before switching adapters")
        self.active = name
        if self.has_active:
            setattr(self, DELTA, self.adapters[name][1])
        elif DELTA in self._parameters:
            delattr(self, DELTA)

    def parameters_aside(self):
        return [delta for _, delta, _ in self.adapters.values()]

    def _table_and_map(self):
        """(cat([W, delta]) (V + n, C), row_map (V,)): W_eff = table[row_map]."""
        idx, delta, _ = self.adapters[self.active]
        V = self.weight.shape[0]
        row_map = np.arange(V)
        row_map[idx] = V + np.arange(len(idx))
        frozen = Tensor(self.weight.data)  # no gradient for the base rows
        return concatenate([frozen, delta], dim=0), row_map

    def forward(self, x):
        if self.merged or not self.has_active:
            if self.mode == "embedding":
                return embedding(x, self.weight, self.padding_idx)
            return linear(x, self.weight, self.bias)
        table, row_map = self._table_and_map()
        if self.mode == "embedding":
            ids = np.asarray(getattr(x, "data", x))
            if ids.size and (ids.min() < 0 or ids.max() >= len(row_map)):
                raise IndexError(f"token id out of range for an embedding of {len(row_map)} rows")
            return embedding(row_map[ids], table)
        return linear(x, embedding(row_map, table), self.bias)  # (V, C) rebuilt, then h W^T

    def merge(self) -> None:
        if not self.merged and self.has_active:
            idx, delta, _ = self.adapters[self.active]
            self.weight.data[idx] = delta.data
            self.merged = True

    def unmerge(self) -> None:
        if self.merged:
            idx, _, original = self.adapters[self.active]
            self.weight.data[idx] = original
            self.merged = False

    def to_base(self):
        """The base ``Embedding`` / ``Linear`` back, holding the merged rows."""
        self.merge()
        out = self.base_layer
        out.weight = self.weight
        out.weight.requires_grad_(True)
        return out

    def extra_repr(self) -> str:
        n = len(self.adapters[self.active][0]) if self.has_active else 0
        return (
            f"mode={self.mode}, shape={tuple(self.weight.shape)}, rows={n}, adapter={self.active!r}"
        )


def add_trainable_tokens(model, module_name: str, indices, adapter_name: str) -> None:
    """Rows ``indices`` of the ``Embedding`` ``module_name`` train for ``adapter_name``; a
    ``Linear`` sharing its weight (a tied output layer) reads the same rows. ``module_name``
    may also be an untied output ``Linear`` (vocab, C): its own rows then train."""
    try:
        layer = get_submodule(model, module_name)
    except AttributeError:
        layer = None
    if isinstance(layer, (Embedding, Linear)):
        sharing = [n for n, m in model.named_modules()
                   if m is not layer and getattr(m, "weight", None) is layer.weight]  # fmt: skip
        if isinstance(layer, Linear) and sharing:
            raise ValueError(f"trainable_token_indices: {module_name!r} shares its weight with "
                             f"{sharing[0]!r}: name that embedding instead")  # fmt: skip
        layer = TrainableTokens(layer, "embedding" if isinstance(layer, Embedding) else "linear")
        set_submodule(model, module_name, layer)
        for name in sharing:
            reader = get_submodule(model, name)
            if isinstance(reader, Linear):  # a tied output layer reads the same rows
                set_submodule(model, name, TrainableTokens(reader, "linear", layer.adapters))
    if not isinstance(layer, TrainableTokens) or layer.tied:
        raise ValueError(f"trainable_token_indices: {module_name!r} is not an Embedding "
                         "or an untied output Linear")  # fmt: skip
    layer.add_adapter(adapter_name, indices)


def token_layers(model) -> dict:
    """``{name: TrainableTokens}`` of the layers that own their rows (tied readers left out)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, TrainableTokens) and not m.tied}


def all_token_layers(model) -> list:
    return [m for m in model.modules() if isinstance(m, TrainableTokens)]
