import numpy as np
import pytest

import numtrans as nt
from numtrans.finetune import dpo_loss
from numtrans.finetune.dpo import sequence_logprobs
from numtrans.models.gpt import GPT, GPTConfig


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=5) for _ in range(4)]


def test_dpo_loss_gradcheck_float64():
    pc, pr, rc, rr = _inputs()
    a = nt.tensor(pc, dtype=np.float64, requires_grad=True)
    b = nt.tensor(pr, dtype=np.float64, requires_grad=True)
    assert nt.gradcheck(lambda x, y: dpo_loss(x, y, rc, rr, beta=0.5)[0], [a, b])


def test_dpo_loss_matches_torch():
    torch = pytest.importorskip("torch")
    pc, pr, rc, rr = _inputs(1)
    a = nt.tensor(pc, dtype=np.float64, requires_grad=True)
    loss, cr, rj = dpo_loss(a, nt.tensor(pr, dtype=np.float64), rc, rr, beta=0.1)
    loss.backward()
    ta = torch.tensor(pc, requires_grad=True)
    logits = 0.1 * ((ta - torch.tensor(rc)) - (torch.tensor(pr) - torch.tensor(rr)))
    tl = -torch.nn.functional.logsigmoid(logits).mean()
    tl.backward()
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-12)
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(cr, 0.1 * (pc - rc))
    np.testing.assert_allclose(rj, 0.1 * (pr - rr))


def test_sequence_logprobs_counts_response_tokens_only():
    nt.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8))
    ids = np.array([[1, 2, 3, 4, 5, 6]])
    labels = np.array([[-100, -100, 4, 5, 6, 7]])
    got = sequence_logprobs(model, ids, labels).item()
    logits, _ = model(ids)
    lp = logits.data - np.log(np.exp(logits.data).sum(-1, keepdims=True))
    want = sum(lp[0, t, labels[0, t]] for t in range(2, 6))
    np.testing.assert_allclose(got, want, rtol=1e-5)


# ---- the DPO training loop on a tiny random GPT ---------------------------------------------
from numtrans.instruct import add_chat_tokens  # noqa: E402
from numtrans.instruct.preference import (  # noqa: E402
    evaluate_preferences,
    frozen_copy,
    preference_batch,
    train_dpo,
)
from numtrans.tokenizers.bpe import ByteBPETokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    tok = ByteBPETokenizer.train("translate: cat dog red blue 猫 狗 红 蓝 " * 10, 270)
    add_chat_tokens(tok)
    nt.manual_seed(0)
    cfg = GPTConfig(block_size=48, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16)
    pairs = [
        ([{"role": "user", "content": f"translate: {en}"}], zh, bad)
        for en, zh, bad in [
            ("cat", "猫", "狗"),
            ("dog", "狗", "红"),
            ("red", "红", "蓝"),
            ("blue", "蓝", "猫"),
        ]  # fmt: skip
    ]
    return tok, GPT(cfg), pairs


def test_preference_batch_masks_the_prompt(tiny):
    tok, _, pairs = tiny
    x, y = preference_batch(pairs[:2], tok, 48)
    assert x.shape[0] == 4
    for row, want in zip(y, ["猫", "狗", "狗", "红"]):
        assert tok.decode(row[row != -100].tolist()) == want + "<|end|>"


def test_dpo_steps_raise_the_margin_and_leave_the_reference_alone(tiny):
    tok, model, pairs = tiny
    ref = frozen_copy(model)
    before_ref = {k: v.copy() for k, v in ref.state_dict().items()}
    assert not any(p.requires_grad for p in ref.parameters())
    start = evaluate_preferences(model, ref, pairs, tok, beta=0.1)
    assert start["reward_margin"] == pytest.approx(0.0, abs=1e-6)  # policy == reference
    assert start["kl"] == pytest.approx(0.0, abs=1e-5)
    logged = []
    history = train_dpo(model, ref, pairs, tok, steps=8, batch_size=4, lr=1e-2, beta=0.1,
                        log=lambda s, st: logged.append(s))  # fmt: skip
    end = evaluate_preferences(model, ref, pairs, tok, beta=0.1)
    assert end["reward_margin"] > start["reward_margin"] + 0.05
    assert end["reward_accuracy"] == 1.0 and end["loss"] < start["loss"]
    assert start["token_kl"] == pytest.approx(0.0, abs=1e-7) and end["token_kl"] > 1e-4
    assert logged == list(range(1, 9)) and {"kl", "reward_accuracy"} <= set(history[0])
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(v, before_ref[k])
    assert any(not np.array_equal(v, before_ref[k]) for k, v in model.state_dict().items())


def test_frozen_copy_keeps_the_precision(tiny):
    _, model, _ = tiny
    double = frozen_copy(frozen_copy(model).double())
    assert all(p.dtype == np.float64 for p in double.parameters())


def test_train_dpo_rejects_bad_settings(tiny):
    tok, model, pairs = tiny
    with pytest.raises(ValueError, match="at least one preference pair"):
        train_dpo(model, model, [], tok)
    with pytest.raises(ValueError, match="beta"):
        train_dpo(model, model, pairs, tok, beta=0)
