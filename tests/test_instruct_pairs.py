import json

import numpy as np
import pytest

import numtrans as nt
from numtrans.instruct import add_chat_tokens
from numtrans.instruct.pairs import (
    make_preference_pairs,
    normalize_pair,
    read_pairs,
    translation_prompts,
    write_pairs,
)
from numtrans.instruct.train import train_sft
from numtrans.metrics import sentence_chrf
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.tokenizers.bpe import ByteBPETokenizer


def test_sentence_chrf_matches_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    cases = [("我很喜欢猫。", "我喜欢猫。"), ("the cat sat on the mat", "a cat sat on a mat"),
             ("abc", "xyz"), ("你好", "你好"), ("a", "ab"), ("", "something")]  # fmt: skip
    for hyp, ref in cases:
        want = sacrebleu.sentence_chrf(hyp, [ref]).score
        assert sentence_chrf(hyp, ref) == pytest.approx(want, abs=1e-9), (hyp, ref)
    assert sentence_chrf("猫", ["狗", "猫"]) == pytest.approx(100.0)


def test_translation_prompts_come_from_the_training_split():
    from numtrans.data.corpus import load_corpus
    from numtrans.translation.data import split_pairs

    train, _, _ = split_pairs(load_corpus("tatoeba_cmn_eng"), seed=0)
    refs = {zh for _, zh in train}
    got = translation_prompts(20, seed=1)
    assert len(got) == 20 and all(ref in refs for _, ref in got)
    assert got[0][0][0]["content"].startswith("Translate into Chinese: ")


def test_pairs_are_ranked_by_chrf_and_round_trip(tmp_path):
    tok = ByteBPETokenizer.train("Translate into Chinese: cat 猫 dog 狗 " * 10, 280)
    add_chat_tokens(tok)
    nt.manual_seed(0)
    model = GPT(GPTConfig(block_size=64, vocab_size=tok.vocab_size, n_layer=1, n_head=2,
                          n_embd=16))  # fmt: skip
    prompts = [([{"role": "user", "content": f"Translate into Chinese: {w}"}], z)
               for w, z in [("cat", "猫"), ("dog", "狗"), ("cat dog", "猫狗")] * 2]  # fmt: skip
    sft = [[*m, {"role": "assistant", "content": z}] for m, z in prompts]
    train_sft(model, tok, sft, steps=40, batch_size=3, lr=1e-2)  # samples now share characters
    pairs, ties = make_preference_pairs(model, tok, prompts * 2, seed=0, max_new_tokens=6)
    assert len(pairs) + ties == 2 * len(prompts) and pairs
    for p in pairs:
        assert p["chosen_chrf"] > p["rejected_chrf"]
        assert sentence_chrf(p["chosen"], p["reference"]) > sentence_chrf(
            p["rejected"], p["reference"]
        )
    path = tmp_path / "pairs.jsonl"
    write_pairs(str(path), pairs)
    back = read_pairs(str(path))
    assert [b[1] for b in back] == [p["chosen"] for p in pairs]


def test_implicit_prompt_layout_and_bad_pairs(tmp_path):
    u = {"role": "user", "content": "hi"}
    conv = lambda text, q=u: [q, {"role": "assistant", "content": text}]  # noqa: E731
    assert normalize_pair({"chosen": conv("a"), "rejected": conv("b")}) == ([u], "a", "b")
    other = {"role": "user", "content": "bye"}
    with pytest.raises(ValueError, match="share no prompt"):
        normalize_pair({"chosen": conv("a"), "rejected": conv("b", other)})
    with pytest.raises(ValueError, match="unknown role"):
        normalize_pair(
            {"prompt": [{"role": "bot", "content": "x"}], "chosen": "a", "rejected": "b"}
        )
    with pytest.raises(ValueError, match="non-empty answer"):
        normalize_pair({"prompt": "hi", "chosen": " ", "rejected": "b"})
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "hi", "chosen": "a", "rejected": "b"}) + "\n{oops\n")
    with pytest.raises(ValueError, match="line 2: not JSON"):
        read_pairs(str(path))
    assert np.isfinite(sentence_chrf("a", "a"))
