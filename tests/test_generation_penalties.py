"""Issue 22: repetition control (no repeated n-gram, repetition penalty) in the shared generation
code, checked against Hugging Face's logits processors, in GPT sampling, greedy and beam search
and the ``translate`` command; issue 14 item 12: ``generate`` fills one preallocated buffer."""

import os
import subprocess
import sys

import numpy as np
import pytest

import numtrans as nt
from numtrans.generation import beam_search, generate, greedy_search
from numtrans.generation.logits_process import (
    apply_repetition_controls,
    ban_repeated_ngrams,
    penalize_repetition,
)
from numtrans.models import Seq2SeqConfig, Seq2SeqTransformer
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.translation import Translator, make_tokenizers

SOURCE = "We will go to Beijing next week."  # issue 22: 我们下周将去看看看看看看
LOOP = "看"


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")


def repeated_ngrams(ids, n):
    """The n-grams that occur more than once in the list ``ids``."""
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    return {g for g in grams if grams.count(g) > 1}


def random_case(rng, B=3, T=9, V=7):
    ids = rng.integers(0, V, (B, T))  # a small vocabulary: n-grams repeat often
    logits = rng.normal(0, 2, (B, V))
    return ids, logits


# ---------------------------------------------------------------- against transformers
@pytest.mark.parametrize("n", [1, 2, 3, 4, 12])
def test_no_repeat_ngram_matches_hugging_face(n):
    torch = pytest.importorskip("torch")
    hf = pytest.importorskip("transformers").NoRepeatNGramLogitsProcessor(n)
    rng = np.random.default_rng(n)
    banned = 0
    for T in (1, 2, 3, 5, 9, 20):
        ids, logits = random_case(rng, T=T)
        ours = ban_repeated_ngrams(logits, ids, n)
        theirs = hf(torch.from_numpy(ids), torch.from_numpy(logits.copy())).numpy()
        np.testing.assert_array_equal(ours, theirs)
        banned += np.isneginf(ours).sum()
    assert banned > 0 or n > 3  # the small sizes do ban tokens
    np.testing.assert_array_equal(ban_repeated_ngrams(logits, ids, 0), logits)  # 0: off


@pytest.mark.parametrize("penalty", [0.5, 1.0, 1.3, 2.0])
def test_repetition_penalty_matches_hugging_face(penalty):
    torch = pytest.importorskip("torch")
    hf = pytest.importorskip("transformers").RepetitionPenaltyLogitsProcessor(penalty)
    rng = np.random.default_rng(7)
    for T in (1, 4, 15):
        ids, logits = random_case(rng, T=T, V=11)
        logits[0, ids[0, 0]] = -np.inf  # an already-banned token stays banned
        ours = penalize_repetition(logits, ids, penalty)
        theirs = hf(torch.from_numpy(ids), torch.from_numpy(logits.copy())).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-15)
    unseen = ~np.isin(np.arange(11), ids[1])
    np.testing.assert_array_equal(ours[1, unseen], logits[1, unseen])  # others untouched


def test_the_formulas_by_hand():
    z = np.array([[2.0, -2.0, 1.0, 0.5]])
    np.testing.assert_allclose(penalize_repetition(z, np.array([[0, 1, 1]]), 2.0),
                               [[1.0, -4.0, 1.0, 0.5]])  # fmt: skip
    # history 1 2 3 1 2: after "1 2" came 3, so with n = 3 token 3 is banned; n = 2: after 2 came 3
    ids = np.array([[1, 2, 3, 1, 2]])
    z = np.zeros((1, 5))
    assert np.isneginf(ban_repeated_ngrams(z, ids, 3)[0]).tolist() == [0, 0, 0, 1, 0]
    assert np.isneginf(ban_repeated_ngrams(z, ids, 1)[0]).tolist() == [0, 1, 1, 1, 0]
    assert apply_repetition_controls(z, ids) is z  # both off: nothing copied


@pytest.mark.parametrize(
    "kwargs, message",
    [({"no_repeat_ngram_size": -1}, "no_repeat_ngram_size must be an integer >= 0"),
     ({"no_repeat_ngram_size": 1.5}, "no_repeat_ngram_size"),
     ({"no_repeat_ngram_size": True}, "no_repeat_ngram_size"),
     ({"repetition_penalty": 0.0}, "repetition_penalty must be a finite number > 0"),
     ({"repetition_penalty": -1.0}, "repetition_penalty"),
     ({"repetition_penalty": float("nan")}, "repetition_penalty"),
     ({"repetition_penalty": float("inf")}, "repetition_penalty")],
)  # fmt: skip
def test_bad_settings_are_one_line_value_errors(gpt, kwargs, message):
    src = np.array([[4, 5, 6]])
    for run in (
        lambda: generate(gpt, src, 3, **kwargs),
        lambda: greedy_search(seq2seq(), src, 2, 3, **kwargs),
        lambda: beam_search(seq2seq(), src, 2, 3, beam_size=2, **kwargs),
    ):
        with pytest.raises(ValueError, match=message) as e:
            run()
        assert "\n" not in str(e.value)


# ---------------------------------------------------------------- GPT generation
@pytest.fixture(scope="module")
def gpt():
    nt.manual_seed(0)
    return GPT(GPTConfig(block_size=12, vocab_size=13, n_layer=2, n_head=2, n_embd=16))


def reference_generate(model, idx, max_new_tokens, rng, temperature, ngram=0, penalty=1.0):
    """The plain loop: full forward over the window, concatenate a new array every step, the
    repetition controls done with Hugging Face's processors."""
    import torch
    from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

    from numtrans.generation import sample_next

    rng = np.random.default_rng(rng)
    block = model.config.block_size
    with nt.no_grad():
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -block:])
            z = torch.from_numpy(logits.data[:, -1, :].astype(np.float64))
            history = torch.from_numpy(idx)
            if penalty != 1.0:
                z = RepetitionPenaltyLogitsProcessor(penalty)(history, z)
            if ngram:
                z = NoRepeatNGramLogitsProcessor(ngram)(history, z)
            nxt = sample_next(z.numpy(), temperature, rng=rng)
            idx = np.concatenate([idx, nxt[:, None].astype(np.int64)], axis=1)
    return idx


@pytest.mark.parametrize(
    "temperature, ngram, penalty", [(0.0, 0, 1.0), (1.0, 0, 1.0), (0.0, 3, 1.5), (0.9, 2, 1.2)]
)
def test_generate_equals_the_plain_reference_loop(gpt, temperature, ngram, penalty):
    pytest.importorskip("transformers")
    prompt = np.array([[1, 2, 3], [4, 5, 4]])
    kw = dict(no_repeat_ngram_size=ngram, repetition_penalty=penalty)
    # 16 new tokens > block_size 12: the window slides, the buffer view must follow it
    expected = reference_generate(gpt, prompt, 16, 11, temperature, ngram, penalty)
    for use_cache in (True, False):
        out = generate(gpt, prompt, 16, temperature, rng=11, use_cache=use_cache, **kw)
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == np.int64 and out.shape == (2, 19)


def test_generate_never_repeats_an_ngram(gpt):
    prompt = np.array([[1, 2, 1]])
    plain = generate(gpt, prompt, 30, temperature=0)[0].tolist()
    assert repeated_ngrams(plain, 3)  # greedy on this model loops
    for temperature in (0.0, 1.0):
        out = generate(gpt, prompt, 30, temperature, rng=3, no_repeat_ngram_size=3)[0].tolist()
        assert not repeated_ngrams(out, 3)  # the prompt's n-grams count too
    with pytest.raises(ValueError, match="bans every token"):
        generate(gpt, prompt, 30, temperature=0, no_repeat_ngram_size=1)  # 13 tokens only


def test_generate_early_stop_returns_the_filled_part(gpt):
    prompt = np.array([[1, 2]])
    full = generate(gpt, prompt, 10, temperature=0)
    eos = int(full[0, 3])
    first = 2 + full[0, 2:].tolist().index(eos)  # where it is first generated
    out = generate(gpt, prompt, 10, temperature=0, eos_id=eos)
    np.testing.assert_array_equal(out, full[:, : first + 1])


# ---------------------------------------------------------------- encoder-decoder decoding
def seq2seq(seed=0, tgt_vocab_size=17, loop_token=None, **kw):
    c = dict(src_vocab_size=15, tgt_vocab_size=tgt_vocab_size, d_model=16, nhead=2,
             num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32, dropout=0.0,
             max_len=40)  # fmt: skip
    c.update(kw)
    nt.manual_seed(seed)
    model = Seq2SeqTransformer(Seq2SeqConfig(**c)).double().eval()
    model.generator.bias.data[3] = -5.0  # <eos> late
    if loop_token is not None:  # one token far ahead of all others: greedy output loops
        model.generator.bias.data[loop_token] = 8.0
    return model


@pytest.fixture(scope="module")
def looping_translator():
    pairs = [(SOURCE, "我们下周将去北京。"), ("Let's go and look.", "我们去看看吧。")]
    src_tok, tgt_tok = make_tokenizers(pairs, src_vocab_size=300)
    model = seq2seq(3, tgt_tok.vocab_size, tgt_tok.token_to_id(LOOP),
                    src_vocab_size=src_tok.vocab_size)  # fmt: skip
    return Translator(model, src_tok, tgt_tok, {"beam_size": 3})


def test_the_issue_sentence_no_longer_loops(looping_translator):
    tr = looping_translator
    loop = tr.tgt_tok.token_to_id(LOOP)
    for beam in (1, 3):
        (h,) = tr.search([SOURCE], beam_size=beam, max_new_tokens=20)[0]
        assert tr.decode(h.tokens).startswith(LOOP * 4)  # the failure of the issue
        assert repeated_ngrams(h.tokens, 2)
        found = tr.search([SOURCE], beam_size=beam, n_best=beam, max_new_tokens=20,
                          no_repeat_ngram_size=2)[0]  # fmt: skip
        for h in found:  # every hypothesis, not only the best
            assert len(h.tokens) >= 8 and not repeated_ngrams([tr.bos_id] + h.tokens, 2)
            assert h.tokens.count(loop) > 2  # 看 still comes, but 看看 at most once
        text = tr.translate([SOURCE], beam_size=beam, max_new_tokens=20, no_repeat_ngram_size=2)
        assert text == [tr.decode(found[0].tokens)]


def test_settings_give_the_default(looping_translator):
    tr = looping_translator
    tr.settings["no_repeat_ngram_size"] = 2
    try:
        assert tr.translate([SOURCE], max_new_tokens=20) == tr.translate(
            [SOURCE], max_new_tokens=20, no_repeat_ngram_size=2
        )
    finally:
        tr.settings["no_repeat_ngram_size"] = 0


def reference_greedy(model, src, max_new, ngram, penalty):
    """Greedy decoding by full forward passes, controls by Hugging Face's processors."""
    import torch
    from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

    tgt = np.array([[2]])
    with nt.no_grad():
        for _ in range(max_new):
            z = model(src, tgt)[0].data[0, -1].astype(np.float64)[None]
            z = RepetitionPenaltyLogitsProcessor(penalty)(
                torch.from_numpy(tgt), torch.from_numpy(z)
            )
            if ngram:
                z = NoRepeatNGramLogitsProcessor(ngram)(torch.from_numpy(tgt), z)
            z = z.numpy()
            z[:, [0, 2]] = -np.inf
            nxt = int(z.argmax())
            if nxt == 3:
                break
            tgt = np.concatenate([tgt, [[nxt]]], axis=1)
    return tgt[0, 1:].tolist()


@pytest.mark.parametrize("ngram, penalty", [(2, 1.0), (1, 1.0), (3, 1.8), (0, 3.0)])
def test_greedy_and_beam_follow_hugging_face(ngram, penalty):
    pytest.importorskip("transformers")
    model = seq2seq(1, loop_token=7)
    src = np.array([[5, 6, 7, 8, 9]])
    kw = dict(max_new_tokens=14, no_repeat_ngram_size=ngram, repetition_penalty=penalty)
    expected = reference_greedy(model, src, 14, ngram, penalty)
    assert greedy_search(model, src, 2, 3, **kw)[0][0].tokens == expected
    assert beam_search(model, src, 2, 3, beam_size=1, **kw)[0][0].tokens == expected
    plain = greedy_search(model, src, 2, 3, max_new_tokens=14)[0][0].tokens
    assert plain != expected  # the control changed the output
    cached = beam_search(model, src, 2, 3, beam_size=3, n_best=3, **kw)[0]
    uncached = beam_search(model, src, 2, 3, beam_size=3, n_best=3, use_cache=False, **kw)[0]
    assert [h.tokens for h in cached] == [h.tokens for h in uncached]
    if ngram:
        assert all(not repeated_ngrams([2] + h.tokens, ngram) for h in cached)


# ---------------------------------------------------------------- the command
@pytest.mark.parametrize(
    "flag, value, message",
    [("--no-repeat-ngram-size", "-1", "--no-repeat-ngram-size: no_repeat_ngram_size must be"),
     ("--repetition-penalty", "0", "--repetition-penalty: repetition_penalty must be")],
)  # fmt: skip
def test_translate_refuses_bad_flags_in_one_line(tmp_path, flag, value, message):
    env = {**os.environ, "NUMTRANS_DEBUG": "0"}  # the installed numtrans, run from tmp_path
    result = subprocess.run(
        [sys.executable, "-m", "numtrans.cli", "translate", "--model", str(tmp_path), flag, value,
         SOURCE],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("numtrans translate: error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_translate_command_passes_the_flags_on(looping_translator, tmp_path, capsys):
    import argparse

    from numtrans.commands.translate import register

    parser = argparse.ArgumentParser(prog="numtrans")
    register(parser.add_subparsers(dest="command", required=True))
    looping_translator.save(str(tmp_path))
    loaded = Translator.load(str(tmp_path))
    assert loaded.settings["no_repeat_ngram_size"] == 0  # saved with the settings, off
    for extra, kw in (
        (["--no-repeat-ngram-size", "2"], {"no_repeat_ngram_size": 2}),
        (["--repetition-penalty", "4"], {"repetition_penalty": 4.0}),
    ):
        argv = ["translate", "--model", str(tmp_path), "--greedy", "--max-new-tokens", "20"]
        args, rest = parser.parse_known_args(argv + extra + [SOURCE])
        assert args.func(args, rest) == 0
        printed = capsys.readouterr().out.splitlines()
        expected = loaded.translate([SOURCE], beam_size=1, max_new_tokens=20, **kw)
        assert printed == expected
        assert expected != loaded.translate([SOURCE], beam_size=1, max_new_tokens=20)
