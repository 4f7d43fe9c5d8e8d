import numpy as np
import pytest

import numtrans as nt
from numtrans.instruct import CHAT_TOKENS, add_chat_tokens, apply_chat_template
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.tokenizers.bpe import ByteBPETokenizer


def _setup(tie=True):
    tok = ByteBPETokenizer.train("the cat sat on the mat " * 20, 270)
    nt.manual_seed(0)
    cfg = GPTConfig(block_size=32, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=8,
                    tie_weights=tie)  # fmt: skip
    return tok, GPT(cfg)


@pytest.mark.parametrize("tie", [True, False])
def test_resize_keeps_old_rows_and_new_ids_work(tie, tmp_path):
    tok, model = _setup(tie)
    old_v = tok.vocab_size
    old_wte = model.transformer["wte"].weight.data.copy()
    old_head = model.lm_head.weight.data.copy()
    ids = np.array([tok.encode("the cat sat")])
    before, _ = model(ids)
    assert add_chat_tokens(tok) == 4
    model.resize_token_embeddings(tok.vocab_size)
    wte = model.transformer["wte"].weight
    assert wte.shape == (old_v + 4, 8) and model.config.vocab_size == old_v + 4
    np.testing.assert_array_equal(wte.data[:old_v], old_wte)
    np.testing.assert_array_equal(model.lm_head.weight.data[:old_v], old_head)
    assert (model.lm_head.weight is wte) == tie
    assert not np.allclose(wte.data[old_v:], 0)  # initialised, not left at zero
    after, _ = model(ids)  # old tokens: the same logits over the old vocabulary
    np.testing.assert_allclose(after.data[..., :old_v], before.data, rtol=1e-6, atol=1e-7)
    chat = apply_chat_template([{"role": "user", "content": "the cat"}], tok, True)
    assert max(chat) >= old_v  # the markers are new ids ...
    logits, loss = model(np.array([chat[:-1]]), np.array([chat[1:]]))  # ... that train
    loss.backward()
    assert np.abs(wte.grad[tok.special_id(CHAT_TOKENS[1])]).sum() > 0
    assert logits.shape[-1] == tok.vocab_size
    model.save_pretrained(str(tmp_path))  # the saved config has the new size
    again = GPT.from_pretrained(str(tmp_path))
    np.testing.assert_array_equal(again.transformer["wte"].weight.data, wte.data)


def test_resize_rejects_a_bad_size():
    _, model = _setup()
    with pytest.raises(ValueError, match="positive integer"):
        model.resize_token_embeddings(0)
