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
