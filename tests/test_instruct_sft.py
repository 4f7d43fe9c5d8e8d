import numpy as np
import pytest

import numtrans as nt
from numtrans.instruct import add_chat_tokens
from numtrans.instruct.sft import IGNORE_INDEX, bucket_batches, sft_example
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.tokenizers.bpe import ByteBPETokenizer


@pytest.fixture(scope="module")
def tok():
    t = ByteBPETokenizer.train("translate this: hello. positive negative " * 10, 280)
    add_chat_tokens(t)
    return t


def _msgs(q, a):
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def test_labels_cover_only_the_answer(tok):
    x, y = sft_example(_msgs("is it good?", "positive"), tok)
    kept = y[y != IGNORE_INDEX]
    assert tok.decode(kept.tolist()) == "positive<|end|>"
    assert len(x) == len(y)


def test_prompt_targets_do_not_change_the_loss(tok):
    nt.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=8))
    x, y = sft_example(_msgs("is it good?", "positive"), tok)
    _, loss = model(x[None], y[None])
    prompt = np.flatnonzero(y == IGNORE_INDEX)
    full = np.concatenate([x[1:], [0]])  # what an unmasked loss would predict
    y2 = y.copy()
    y2[prompt[-1]] = 3  # a prompt target written in (unmasked) changes the loss ...
    _, loss2 = model(x[None], y2[None])
    assert loss2.item() != pytest.approx(loss.item())
    other = sft_example(_msgs("is it bad?", "positive"), tok)[1]  # ... other prompt, same labels
    assert (other[other != IGNORE_INDEX] == y[y != IGNORE_INDEX]).all()
    y3 = np.where(y == IGNORE_INDEX, full, y)  # counting the prompt does change it
    _, loss3 = model(x[None], y3[None])
    assert loss3.item() != pytest.approx(loss.item())


def test_bucket_batches_pad_with_ignore(tok):
    ex = [sft_example(_msgs("q" * n, "positive"), tok) for n in (1, 9, 2, 8)]
    batches = bucket_batches(ex, 2, pad_id=0)
    lens = [b[0].shape[1] for b in batches]
    assert lens == sorted(lens) and len(batches) == 2
    x, y = batches[0]
    assert (y[x == 0] == IGNORE_INDEX).all() or (x != 0).all()
    assert sum(int((b[1] != IGNORE_INDEX).sum()) for b in batches) == sum(
        int((e[1] != IGNORE_INDEX).sum()) for e in ex
    )


@pytest.mark.parametrize("loss_per", ["token", "example"])
def test_train_sft_lowers_the_masked_loss_of_a_base_model(loss_per):
    from numtrans.instruct.train import prepare_model, train_sft

    base_tok = ByteBPETokenizer.train("is it good? positive negative " * 10, 270)
    nt.manual_seed(0)
    model = GPT(GPTConfig(block_size=32, vocab_size=base_tok.vocab_size, n_layer=1, n_head=2,
                          n_embd=16))  # fmt: skip
    assert prepare_model(model, base_tok) == 4 and model.config.vocab_size == base_tok.vocab_size
    convs = [_msgs("is it good?", "positive"), _msgs("is it bad?", "negative")]
    losses = train_sft(model, base_tok, convs, steps=30, batch_size=2, lr=1e-2, loss_per=loss_per)
    assert len(losses) == 30 and losses[-1] < 0.5 * losses[0]
    assert prepare_model(model, base_tok) == 0  # already a chat model: nothing changes
    with pytest.raises(ValueError, match="loss_per"):
        train_sft(model, base_tok, convs, steps=1, loss_per="sequence")


def test_example_mean_loss_weighs_each_answer_once(tok):
    from numtrans.instruct.train import _example_mean_loss

    nt.manual_seed(1)
    model = GPT(GPTConfig(block_size=32, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=8))
    ex = [sft_example(_msgs("good?", "positive"), tok),
          sft_example(_msgs("translate this", "hello. positive negative positive"), tok)]  # fmt: skip
    ((x, y),) = bucket_batches(ex, 2, pad_id=0)
    per_example = [model(xi[None], yi[None])[1].item() for xi, yi in ex]  # each one's token mean
    got = _example_mean_loss(model, x, y).item()
    np.testing.assert_allclose(got, np.mean(per_example), rtol=1e-5)
    token_mean = model(x, y)[1].item()
    assert abs(token_mean - got) > 1e-4  # the long answer dominates the token mean
