"""A key/value cache for incremental (token-by-token) decoding.

Generating token t+1 with a causal model needs the keys and values of tokens 0..t in every
layer. Recomputing them at every step costs O(T^2) projections over a generation; keeping them
costs memory only. Each step then feeds just the new token(s):

    step 0 (prefill): idx (B, T0)  -> k, v (B, H, T0, hs) stored
    step n:           idx (B, 1)   -> new k, v (B, H, 1, hs) appended; attention over all T keys

Cross-attention in an encoder-decoder model attends to the encoder output (the "memory"), which
does not change while decoding: its keys and values are computed once and reused (``static``).

The cache is for inference (run it under ``numtrans.no_grad()``): stored keys and values are
plain arrays, so no gradient flows into earlier steps. The training path never sees it: an
attention layer only calls ``cache.update(k, v)`` when it was given a cache.

Storage grows by doubling (amortised O(1) per appended position), and ``reorder`` selects rows
of the batch, which beam search needs after each step.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


class AttentionCache:
    """Keys and values of one attention layer, each (B, H, length, hs)."""

    def __init__(self, static: bool = False):
        self.static = static  # True: cross-attention, computed once
        self._k = self._v = None
        self.length = 0

    @property
    def filled(self) -> bool:
        """True once a static (cross-attention) cache holds the memory's keys and values."""
        return self._k is not None

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new keys and values (B, H, T_new, hs) and return all of them so far,
        (B, H, length, hs) — PyTorch/Hugging Face's ``cache.update(k, v)``. A static cache
        stores them once (the encoder output does not change) and then only returns them."""
        if self.static:
            if self._k is None:
                self._k, self._v = k.data, v.data
                self.length = k.shape[-2]
            return self.keys_values()
        self._append(k.data, v.data)
        return self.keys_values()

    def keys_values(self) -> tuple[Tensor, Tensor]:
        """The cached keys and values, (B, H, length, hs) each."""
        if self._k is None:
            raise RuntimeError("the cache is empty: update(k, v) first")
        n = self.length
        return Tensor(self._k[..., :n, :]), Tensor(self._v[..., :n, :])

    def _append(self, k: np.ndarray, v: np.ndarray) -> None:
        n, t = self.length, k.shape[-2]
        if self._k is None or n + t > self._k.shape[-2]:
            capacity = max(n + t, 2 * (0 if self._k is None else self._k.shape[-2]), 16)
            self._k = self._grow(self._k, k, capacity)
            self._v = self._grow(self._v, v, capacity)
        self._k[..., n : n + t, :] = k
        self._v[..., n : n + t, :] = v
        self.length = n + t

    def _grow(self, old, new: np.ndarray, capacity: int) -> np.ndarray:
        buf = np.empty(new.shape[:-2] + (capacity, new.shape[-1]), dtype=new.dtype)
        if old is not None:
            buf[..., : self.length, :] = old[..., : self.length, :]
        return buf

    def reorder(self, index) -> None:
        """Keep batch rows ``index`` (beam search: which hypotheses survived)."""
        index = np.asarray(getattr(index, "data", index))
        if self._k is not None:
            self._k, self._v = self._k[index], self._v[index]

    def reset(self) -> None:
        self._k = self._v = None
        self.length = 0


class LayerCache:
    """The caches of one decoder layer: self-attention, and cross-attention if any."""

    def __init__(self, cross_attention: bool = False):
        self.self_attn = AttentionCache()
        self.cross_attn = AttentionCache(static=True) if cross_attention else None


class KVCache:
    """Caches for every layer of a decoder. ``kv_cache[i]`` is layer i's ``LayerCache``.

    >>> cache = KVCache(n_layers=2)
    >>> cache.length          # positions seen so far; the next token sits at this position
    0
    """

    def __init__(self, n_layers: int, cross_attention: bool = False):
        self.layers = [LayerCache(cross_attention) for _ in range(n_layers)]

    def __getitem__(self, i: int) -> LayerCache:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def length(self) -> int:
        return self.layers[0].self_attn.length if self.layers else 0

    def reorder(self, index) -> None:
        for layer in self.layers:
            layer.self_attn.reorder(index)
            if layer.cross_attn is not None:
                layer.cross_attn.reorder(index)

    def reset(self) -> None:
        for layer in self.layers:
            layer.self_attn.reset()
            if layer.cross_attn is not None:
                layer.cross_attn.reset()
