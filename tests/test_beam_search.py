"""Greedy and beam search for the encoder-decoder: width 1 is greedy, beam finds better-scoring
translations, n-best lists, <eos>, the length penalty, the KV cache, batching."""

import numpy as np
import pytest

import numtrans as nt
from numtrans.generation.beam_search import beam_search, greedy_search, length_penalty
from numtrans.models import Seq2SeqConfig, Seq2SeqTransformer

BOS, EOS = 2, 3  # pad = 0, as in numtrans.translation


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")


# (seed, <eos> bias) of random models whose greedy translations end at varied lengths
CASES = [(0, 2.0), (1, 0.5), (2, 0.5), (4, 2.0), (5, 2.0), (8, 1.0), (9, 2.5)]
MAX_NEW = 12


def tiny_model(seed=0, eos_bias=2.0, **kw):
    """A random float64 model; the <eos> bias sets how soon translations end."""
    c = dict(src_vocab_size=15, tgt_vocab_size=17, d_model=16, nhead=2, num_encoder_layers=2,
             num_decoder_layers=2, dim_feedforward=32, dropout=0.0, max_len=32)  # fmt: skip
    c.update(kw)
    nt.manual_seed(seed)
    model = Seq2SeqTransformer(Seq2SeqConfig(**c)).double().eval()
    model.generator.bias.data[EOS] = eos_bias
    return model


def case(i):
    seed, eos_bias = CASES[i]
    return tiny_model(seed, eos_bias), sources(seed)


def sources(seed=0, B=8, S=6):
    rng = np.random.default_rng(seed)
    src = rng.integers(4, 15, (B, S))
    src[1, 4:] = 0  # a padded sentence
    src[3, 2:] = 0
    return src


def teacher_forced_log_prob(model, src, tokens, finished):
    """log P(tokens [+ <eos>] | src) from one full forward pass, for one sentence."""
    target = list(tokens) + ([EOS] if finished else [])
    if not target:
        return 0.0
    tgt = np.array([[BOS] + target[:-1]])
    z = model(src[None], tgt, src_padding_mask=src[None] == 0)[0].data[0]
    z[:, [0, BOS]] = -np.inf  # the searches never generate <pad> or <bos>
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(sum(logp[t, y] for t, y in enumerate(target)))


@pytest.mark.parametrize("i", range(4))
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_width_one_is_greedy(i, alpha):
    model, src = case(i)
    greedy = greedy_search(model, src, BOS, EOS, alpha=alpha, max_new_tokens=MAX_NEW)
    beam = beam_search(model, src, BOS, EOS, beam_size=1, alpha=alpha, max_new_tokens=MAX_NEW)
    for g, b in zip(greedy, beam):
        assert g[0].tokens == b[0].tokens and g[0].finished == b[0].finished
        assert g[0].log_prob == pytest.approx(b[0].log_prob, abs=1e-12)
        assert g[0].score == pytest.approx(b[0].score, abs=1e-12)
    assert len({len(g[0].tokens) for g in greedy}) > 1  # the case covers varied lengths


def test_beam_scores_at_least_greedy():
    better = 0
    for i in range(len(CASES)):
        model, src = case(i)
        greedy = greedy_search(model, src, BOS, EOS, max_new_tokens=MAX_NEW)
        beam = beam_search(model, src, BOS, EOS, beam_size=4, alpha=0.0, max_new_tokens=MAX_NEW)
        for g, b in zip(greedy, beam):
            assert b[0].log_prob >= g[0].log_prob - 1e-12
            better += b[0].log_prob > g[0].log_prob + 1e-6
    assert better >= 10  # beam search finds more probable translations, often


def test_scores_are_the_models_log_probabilities():
    model, src = case(4)
    for alpha in (0.0, 1.0):
        found = beam_search(
            model, src, BOS, EOS, beam_size=3, alpha=alpha, n_best=3, max_new_tokens=MAX_NEW
        )
        for b, hyps in enumerate(found):
            for h in hyps:
                expected = teacher_forced_log_prob(model, src[b], h.tokens, h.finished)
                assert h.log_prob == pytest.approx(expected, abs=1e-9)
                length = len(h.tokens) + h.finished
                assert h.score == pytest.approx(h.log_prob / length_penalty(length, alpha))


def test_nbest_sorted_and_distinct():
    model, src = case(5)
    found = beam_search(model, src, BOS, EOS, 5, alpha=0.6, n_best=5, max_new_tokens=MAX_NEW)
    for hyps in found:
        assert len(hyps) == 5
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == 5
        assert all(0 not in h.tokens and BOS not in h.tokens and EOS not in h.tokens for h in hyps)


def test_eos_handling():
    src = sources(6)
    ends_at_once = tiny_model(6, eos_bias=50.0)
    for search in (greedy_search, beam_search):
        for (h,) in search(ends_at_once, src, BOS, EOS):
            assert h.tokens == [] and h.finished and h.log_prob > -1e-6
    never_ends = tiny_model(6, eos_bias=-50.0)
    for search in (greedy_search, beam_search):
        for (h,) in search(never_ends, src, BOS, EOS, max_new_tokens=7):
            assert len(h.tokens) == 7 and not h.finished
    # the positional table bounds the length: max_len 32 -> at most 31 new tokens
    (h,) = greedy_search(never_ends, src[:1], BOS, EOS, max_new_tokens=100)[0]
    assert len(h.tokens) == 31


def test_length_penalty_prefers_longer_translations():
    assert length_penalty(1, 0.0) == 1.0 and length_penalty(7, 1.0) == pytest.approx(2.0)
    model, src = case(6)
    lengths = {}
    for alpha in (0.0, 2.0):
        found = beam_search(model, src, BOS, EOS, beam_size=4, alpha=alpha, max_new_tokens=MAX_NEW)
        lengths[alpha] = [len(h[0].tokens) for h in found]
    assert sum(lengths[2.0]) > sum(lengths[0.0])


@pytest.mark.parametrize("beam_size", [1, 3])
def test_cached_and_uncached_decoding_agree(beam_size):
    model, src = case(3)
    kw = dict(n_best=beam_size, max_new_tokens=MAX_NEW)
    cached = beam_search(model, src, BOS, EOS, beam_size, **kw)
    plain = beam_search(model, src, BOS, EOS, beam_size, use_cache=False, **kw)
    for a, b in zip(cached, plain):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-10)
    g1 = greedy_search(model, src, BOS, EOS, max_new_tokens=MAX_NEW)
    g2 = greedy_search(model, src, BOS, EOS, max_new_tokens=MAX_NEW, use_cache=False)
    assert [h[0].tokens for h in g1] == [h[0].tokens for h in g2]


def test_batch_equals_one_sentence_at_a_time():
    model, src = case(1)
    kw = dict(beam_size=3, n_best=2, max_new_tokens=MAX_NEW)
    batch = beam_search(model, src, BOS, EOS, **kw)
    for b in range(len(src)):
        row = src[b : b + 1, : int((src[b] != 0).sum())]  # the sentence without its padding
        alone = beam_search(model, row, BOS, EOS, **kw)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in batch[b]]
        np.testing.assert_allclose([h.score for h in alone], [h.score for h in batch[b]], atol=1e-9)


def test_bad_arguments():
    model, src = tiny_model(), sources()
    with pytest.raises(ValueError, match="n_best"):
        beam_search(model, src, BOS, EOS, beam_size=2, n_best=3)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, src, BOS, EOS, beam_size=0)
    with pytest.raises(ValueError, match="too large"):
        beam_search(model, src, BOS, EOS, beam_size=9)
    with pytest.raises(ValueError, match="integer token ids"):
        greedy_search(model, src.astype(float), BOS, EOS)
    with pytest.raises(ValueError, match="eos_id"):
        greedy_search(model, src, BOS, 17)
    was = model.train()
    beam_search(was, src[:1], BOS, EOS, beam_size=2)
    assert model.training  # the caller's mode is restored
