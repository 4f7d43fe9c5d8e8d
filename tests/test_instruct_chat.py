import numpy as np
import pytest

import numtrans as nt
from numtrans.instruct import add_chat_tokens
from numtrans.instruct.chat import ChatSession
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.tokenizers.bpe import ByteBPETokenizer


@pytest.fixture(scope="module")
def chat_model():
    tok = ByteBPETokenizer.train("hello there, how are you? 你好 " * 20, 280)
    add_chat_tokens(tok)
    nt.manual_seed(0)
    cfg = GPTConfig(block_size=64, vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=16)
    return GPT(cfg), tok


def test_cache_across_turns_gives_the_same_answers_for_less_work(chat_model):
    model, tok = chat_model
    kw = {"max_new_tokens": 5, "temperature": 0.0}
    cached, plain = ChatSession(model, tok, **kw), ChatSession(model, tok, use_cache=False, **kw)
    cached.set_system("be brief")
    plain.set_system("be brief")
    for text in ["hello", "how are you?", "你好"]:
        before, held = cached.tokens_fed, list(cached.cached)
        a = cached.respond(text)
        assert a == plain.respond(text)
        if held:  # turns 2 and 3 feed only what the cache did not hold
            new_user = len(tok.encode(text, allowed_special=())) + 1
            assert cached.tokens_fed - before <= new_user + 3 + 5
    assert cached.tokens_fed < plain.tokens_fed / 2


def test_streamed_pieces_add_up_to_the_answer(chat_model):
    model, tok = chat_model
    pieces = []
    s = ChatSession(model, tok, max_new_tokens=12, temperature=1.0, seed=3)
    answer = s.respond("你好", on_text=pieces.append)
    assert "".join(pieces) == answer and len(pieces) >= 1


def test_a_long_conversation_is_cut_from_the_oldest_turn(chat_model):
    model, tok = chat_model
    notes = []
    s = ChatSession(model, tok, max_new_tokens=8, temperature=0.0)
    s.set_system("sys")
    for i in range(6):
        s.respond(f"hello there, how are you? {i}", on_note=notes.append)
        assert len(s.cached) <= model.config.block_size  # what the model read: never more
        assert s.cached[: len(s.system)] == s.system
    assert any("dropped the oldest" in n for n in notes)
    assert s.system and s.turns[0][0] == tok.special_id("<|user|>")  # system kept, turns whole
    s.respond("how are you? " * 40, on_note=notes.append)  # one message longer than the block
    assert "kept its last" in notes[-1] or "kept its last" in notes[-2]


def test_bad_history_and_non_chat_tokenizer(chat_model):
    model, tok = chat_model
    with pytest.raises(ValueError, match="unknown role"):
        ChatSession(model, tok, history=[{"role": "bot", "content": "x"}])
    plain = ByteBPETokenizer.train("abc abc abc", 260)
    with pytest.raises(ValueError, match="no chat tokens"):
        ChatSession(model, plain)
    s = ChatSession(model, tok, history=[{"role": "user", "content": "hi"},
                                         {"role": "assistant", "content": "hello"}])  # fmt: skip
    assert len(s.turns) == 2 and isinstance(s.respond("more"), str)
    s.reset()
    assert s.turns == [] and np.size(s.cached) == 0
