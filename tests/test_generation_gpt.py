"""GPT text generation: the KV cache changes the speed, never the tokens."""

import numpy as np
import pytest

import numtrans as nt
from numtrans.generation.generate import generate
from numtrans.models.gpt import GPT, GPTConfig


@pytest.fixture(scope="module")
def model():
    nt.manual_seed(0)
    return GPT(GPTConfig(block_size=12, vocab_size=13, n_layer=2, n_head=2, n_embd=16))


@pytest.mark.parametrize(
    "kwargs",
    [{"temperature": 0}, {"temperature": 0.8, "top_k": 4}, {"temperature": 1.2, "top_p": 0.9}],
)
def test_cached_and_uncached_generation_agree(model, kwargs):
    prompt = np.array([[1, 2, 3], [4, 5, 6]])
    # 20 new tokens > block_size 12: the window slides and the cache is rebuilt
    a = generate(model, prompt, 20, rng=5, use_cache=True, **kwargs)
    b = generate(model, prompt, 20, rng=5, use_cache=False, **kwargs)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 23)
    np.testing.assert_array_equal(a[:, :3], prompt)


def test_same_seed_same_text_different_seed_differs(model):
    prompt = np.array([[0]])
    a = generate(model, prompt, 15, rng=1)
    assert np.array_equal(a, generate(model, prompt, 15, rng=1))
    assert any(not np.array_equal(a, generate(model, prompt, 15, rng=s)) for s in range(2, 6))


def test_greedy_matches_argmax_of_full_forward(model):
    prompt = np.array([[3, 1, 4]])
    out = generate(model, prompt, 1, temperature=0)
    with nt.no_grad():
        logits, _ = model(prompt)
    assert out[0, -1] == np.argmax(logits.data[0, -1])


def test_stops_at_eos_and_streams_tokens(model):
    prompt = np.array([[1, 2]])
    greedy = generate(model, prompt, 10, temperature=0)
    eos = int(greedy[0, 4])  # the third generated token, used as the end token
    seen = []
    out = generate(
        model,
        prompt,
        10,
        temperature=0,
        eos_id=eos,
        callback=lambda tok, step: seen.append((step, int(tok[0]))),
    )
    assert out[0, -1] == eos
    assert out.shape[1] <= 2 + 3
    assert [t for _, t in seen] == out[0, 2:].tolist()
    assert [s for s, _ in seen] == list(range(len(seen)))


def test_bad_prompt_is_refused(model):
    with pytest.raises(ValueError, match="token ids"):
        generate(model, np.array([[99]]), 3)
    with pytest.raises(ValueError, match="non-empty"):
        generate(model, np.zeros((1, 0), dtype=int), 3)


def test_training_mode_is_restored(model):
    model.train()
    generate(model, np.array([[1]]), 2)
    assert model.training
