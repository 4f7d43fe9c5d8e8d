"""Next-token selection: greedy, temperature, top-k, top-p."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numtrans.generation.sampling import filter_top_k, filter_top_p, sample_next


def test_greedy_is_argmax():
    logits = np.array([[0.1, 3.0, -1.0], [5.0, 4.0, 4.9]])
    np.testing.assert_array_equal(sample_next(logits, temperature=0), [1, 0])


def test_top_k_keeps_exactly_k():
    logits = np.array([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = np.isfinite(filter_top_k(logits, 2))
    np.testing.assert_array_equal(kept, [[False, True, False, True, False]])


def test_top_p_keeps_the_nucleus():
    probs = np.array([[0.5, 0.3, 0.15, 0.05]])
    logits = np.log(probs)
    kept = np.isfinite(filter_top_p(logits, 0.7))  # 0.5 < 0.7, 0.5 + 0.3 crosses it
    np.testing.assert_array_equal(kept, [[True, True, False, False]])
    kept = np.isfinite(filter_top_p(logits, 0.1))  # the most likely token always stays
    np.testing.assert_array_equal(kept, [[True, False, False, False]])


def test_sampling_is_reproducible_with_a_seed():
    logits = np.random.default_rng(0).standard_normal((4, 50))
    a = sample_next(logits, rng=np.random.default_rng(7))
    b = sample_next(logits, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_sampling_frequencies_follow_the_distribution():
    probs = np.array([0.6, 0.3, 0.1])
    logits = np.log(np.tile(probs, (20000, 1)))
    ids = sample_next(logits, rng=np.random.default_rng(0))
    freq = np.bincount(ids, minlength=3) / ids.size
    np.testing.assert_allclose(freq, probs, atol=0.015)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.integers(0, 10_000))
def test_sampled_tokens_lie_inside_top_k(k, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((3, 10))
    ids = sample_next(logits, temperature=1.3, top_k=k, rng=rng)
    allowed = np.argsort(-logits, axis=-1)[:, :k]
    assert all(ids[i] in allowed[i] for i in range(3))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="top_k"):
        filter_top_k(np.zeros((1, 3)), 0)
    with pytest.raises(ValueError, match="top_p"):
        filter_top_p(np.zeros((1, 3)), 1.5)
    with pytest.raises(ValueError, match="temperature"):
        sample_next(np.zeros((1, 3)), temperature=-1)
    with pytest.raises(ValueError, match=r"\(B, V\)"):
        sample_next(np.zeros(3))


def test_non_finite_sampling_parameters_and_logits_are_refused():
    """Issue 14, item 9: NaN settings or NaN logits never print a silent sample."""
    import pytest

    from numtrans.generation.sampling import sample_next

    logits = np.zeros((1, 5))
    with pytest.raises(ValueError, match="temperature"):
        sample_next(logits, temperature=float("nan"))
    with pytest.raises(ValueError, match="top_p"):
        sample_next(logits, top_p=float("nan"))
    bad = logits.copy()
    bad[0, 2] = np.nan
    with pytest.raises(FloatingPointError, match="NaN"):
        sample_next(bad, temperature=0.8)
    with pytest.raises(FloatingPointError, match="NaN"):
        sample_next(bad, temperature=0)
