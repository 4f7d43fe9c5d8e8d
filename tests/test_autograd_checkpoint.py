"""Activation checkpointing gives the same gradients as the plain run (issue 19)."""

import numpy as np
import pytest

import numtrans as nt
from numtrans import nn
from numtrans.autograd import checkpoint


def _block(seed=0, dropout=0.0):
    nt.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.GELU(), nn.Dropout(dropout), nn.Linear(12, 6)).to(
        np.float64
    )


def _run(block, x, use_checkpoint):
    for p in block.parameters():
        p.grad = None
    x.grad = None
    out = checkpoint(block, x) if use_checkpoint else block(x)
    (out * out).sum().backward()
    return out.data, x.grad.copy(), [p.grad.copy() for p in block.parameters()]


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_gradients_identical_with_and_without(dropout):
    block = _block(dropout=dropout)
    block.train()
    x = nt.tensor(np.random.default_rng(0).standard_normal((4, 6)), requires_grad=True)
    nt.manual_seed(123)
    plain = _run(block, x, False)
    nt.manual_seed(123)
    ckpt = _run(block, x, True)  # dropout replays the same mask in the recomputation
    np.testing.assert_array_equal(plain[0], ckpt[0])
    np.testing.assert_allclose(plain[1], ckpt[1], rtol=1e-13, atol=1e-13)
    for a, b in zip(plain[2], ckpt[2]):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_checkpoint_passes_gradcheck():
    block = _block()
    x = nt.tensor(np.random.default_rng(1).standard_normal((3, 6)), requires_grad=True)
    assert nt.gradcheck(lambda t: checkpoint(block, t), (x,))


def test_nothing_is_recorded_inside_the_first_forward():
    block = _block()
    x = nt.tensor(np.ones((2, 6)), requires_grad=True)
    out = checkpoint(block, x)
    assert out._op == "checkpoint" and out._parents == (x,)  # one node, not the block's graph


def test_fn_must_return_a_tensor():
    with pytest.raises(TypeError, match="one Tensor"):
        checkpoint(lambda t: (t, t), nt.tensor(np.ones(2), requires_grad=True))


def test_gpt_gradient_checkpointing_gives_the_same_gradients():
    from numtrans.models.gpt import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, dropout=0.1)
    nt.manual_seed(0)
    model = GPT(cfg).to(np.float64)
    model.train()
    rng = np.random.default_rng(0)
    idx, tgt = rng.integers(0, 11, (2, 8)), rng.integers(0, 11, (2, 8))
    grads = []
    for enable in (False, True):
        model.gradient_checkpointing_enable(enable)
        for p in model.parameters():
            p.grad = None
        nt.manual_seed(5)
        _, loss = model(idx, tgt)
        loss.backward()
        grads.append([p.grad.copy() for p in model.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _grads_with_and_without(model, run):
    grads = []
    for enable in (False, True):
        model.gradient_checkpointing_enable(enable)
        for p in model.parameters():
            p.grad = None
        nt.manual_seed(5)  # the same dropout masks in both runs
        run().backward()
        grads.append([p.grad.copy() for p in model.parameters()])
    return grads


def test_bert_gradient_checkpointing_gives_the_same_gradients():
    from numtrans.models import BertConfig, BertForMaskedLM

    cfg = BertConfig(vocab_size=13, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=16)  # fmt: skip
    nt.manual_seed(0)
    model = BertForMaskedLM(cfg).to(np.float64)
    model.train()  # dropout on: the recomputed forward must replay its masks
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 13, (2, 7))
    mask = np.ones((2, 7), dtype=bool)
    mask[1, 5:] = False
    labels = np.where(rng.random((2, 7)) < 0.4, ids, -100)
    recomputed = []
    encoder = model.bert.encoder
    original = encoder.layer[0].forward

    def counting(*a, **k):
        recomputed.append(1)
        return original(*a, **k)

    encoder.layer[0].forward = counting
    grads = _grads_with_and_without(
        model, lambda: model(ids, attention_mask=mask, labels=labels).loss
    )
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert len(recomputed) == 3  # once without; forward + recompute with checkpointing
    assert encoder.gradient_checkpointing
    model.gradient_checkpointing_disable()
    assert not encoder.gradient_checkpointing


def test_gradient_checkpointing_needs_blocks():
    from numtrans.models import Seq2SeqConfig, Seq2SeqTransformer

    model = Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=5, tgt_vocab_size=5, d_model=8, nhead=2,
                                             num_encoder_layers=1, num_decoder_layers=1,
                                             dim_feedforward=8))  # fmt: skip
    with pytest.raises(ValueError, match="Seq2SeqTransformer has no blocks"):
        model.gradient_checkpointing_enable()
