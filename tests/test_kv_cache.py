"""The KV cache reads as a cache: ``update(k, v)`` appends and returns every key and value."""

import numpy as np
import pytest

import numtrans as nt
from numtrans.nn.kv_cache import AttentionCache, KVCache


def test_update_appends_and_returns_all_positions():
    rng = np.random.default_rng(0)
    cache = AttentionCache()
    chunks = [rng.standard_normal((2, 3, t, 4)) for t in (5, 1, 1, 20)]  # past the first capacity
    for i, c in enumerate(chunks):
        k, v = cache.update(nt.tensor(c), nt.tensor(-c))
        expected = np.concatenate(chunks[: i + 1], axis=2)
        np.testing.assert_array_equal(k.data, expected)
        np.testing.assert_array_equal(v.data, -expected)
        assert cache.length == expected.shape[2]


def test_static_cache_keeps_the_first_memory():
    cache = AttentionCache(static=True)
    assert not cache.filled
    first = nt.tensor(np.ones((1, 1, 3, 2)))
    cache.update(first, first)
    assert cache.filled
    k, _ = cache.update(nt.tensor(np.zeros((1, 1, 3, 2))), first)  # ignored: memory is fixed
    np.testing.assert_array_equal(k.data, first.data)
    cache.reset()
    assert not cache.filled
    with pytest.raises(RuntimeError, match="empty"):
        cache.keys_values()


def test_reorder_selects_beams():
    cache = KVCache(n_layers=1)
    c = np.arange(2 * 1 * 2 * 1, dtype=float).reshape(2, 1, 2, 1)
    cache[0].self_attn.update(nt.tensor(c), nt.tensor(c))
    cache.reorder([1, 1])
    k, _ = cache[0].self_attn.keys_values()
    np.testing.assert_array_equal(k.data, c[[1, 1]])
