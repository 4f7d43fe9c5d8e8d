"""Packed rows in ``GPT.forward(..., document_ids=)``: several examples in one row give the logits
and loss each gets on its own (float64, tight), for learned and rotary positions, on the NumPy
and native attention paths, with gradient checkpointing; bad document ids are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from numtrans import backends
from numtrans.functional.losses import cross_entropy
from numtrans.models.gpt import GPT, GPTConfig, document_mask, document_positions


def tiny(pos: str, dtype=np.float64) -> GPT:
    model = GPT(GPTConfig(block_size=16, vocab_size=23, n_layer=2, n_head=2, n_embd=16, pos=pos))
    for i, p in enumerate(model.parameters()):  # random enough that every position matters
        p.data = (np.random.default_rng(i).standard_normal(p.shape) * 0.3).astype(dtype)
    model.eval()
    return model


def pack(examples, width):
    """One row: the examples back to back, then padding (its own document, label -100)."""
    idx = np.zeros((1, width), np.int64)
    tgt = np.full((1, width), -100, np.int64)
    doc = np.full((1, width), len(examples), np.int64)
    t = 0
    for d, (x, y) in enumerate(examples):
        idx[0, t : t + len(x)], tgt[0, t : t + len(x)], doc[0, t : t + len(x)] = x, y, d
        t += len(x)
    return idx, tgt, doc


def examples(rng):
    out = []
    for n in (5, 3, 6):
        x = rng.integers(0, 23, n)
        out.append((x, rng.integers(0, 23, n)))
    return out


def test_positions_restart_and_the_mask_is_block_diagonal_causal():
    doc = np.array([[0, 0, 0, 1, 1, 2]])
    assert document_positions(doc, doc.shape).tolist() == [[0, 1, 2, 0, 1, 0]]
    m = document_mask(doc)[0, 0]
    assert m.shape == (6, 6)
    assert m[4].tolist() == [False, False, False, True, True, False]  # its own doc, causal
    assert not m[3, :3].any() and m[2, :3].all()


@pytest.mark.parametrize("pos", ["learned", "rope"])
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_a_packed_row_equals_the_examples_one_by_one(pos, backend):
    if backend == "cpu" and not backends.is_available("cpu"):
        pytest.skip("the compiled kernels are not built")
    model = tiny(pos)
    exs = examples(np.random.default_rng(1))
    idx, tgt, doc = pack(exs, 16)
    with backends.use(backend):
        packed, loss = model(idx, tgt, document_ids=doc)
        t = 0
        for x, _y in exs:
            alone, _ = model(x[None])
            np.testing.assert_allclose(packed.data[0, t : t + len(x)], alone.data[0], atol=1e-12)
            t += len(x)
        singles = [cross_entropy(model(x[None])[0].reshape(len(x), -1), y, reduction="sum")
                   for x, y in exs]  # fmt: skip
    n = sum(len(y) for _, y in exs)
    assert loss.item() == pytest.approx(sum(s.item() for s in singles) / n, abs=1e-12)


def test_without_the_mask_the_examples_leak():
    """The test above can fail: an unmasked row differs after the first example."""
    model = tiny("learned")
    exs = examples(np.random.default_rng(1))
    idx, _, doc = pack(exs, 16)
    masked, _ = model(idx, document_ids=doc)
    plain, _ = model(idx)
    np.testing.assert_allclose(masked.data[0, :5], plain.data[0, :5], atol=1e-12)
    assert np.abs(masked.data[0, 5:8] - plain.data[0, 5:8]).max() > 1e-3


def test_gradients_match_and_checkpointing_keeps_the_mask():
    model = tiny("rope")
    exs = examples(np.random.default_rng(2))
    idx, tgt, doc = pack(exs, 16)
    _, loss = model(idx, tgt, document_ids=doc)
    loss.backward()
    packed_grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    n = sum(len(y) for _, y in exs)
    for x, y in exs:
        logits, _ = model(x[None])
        (cross_entropy(logits.reshape(len(x), -1), y, reduction="sum") / n).backward()
    for a, p in zip(packed_grads, model.parameters(), strict=True):
        np.testing.assert_allclose(a, p.grad, atol=1e-10)
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model.train()
    _, again = model(idx, tgt, document_ids=doc)
    assert again.item() == pytest.approx(loss.item(), abs=1e-12)


@pytest.mark.parametrize(
    "doc, text",
    [
        (np.array([[0, 1, 0, 1]]), "non-decreasing"),
        (np.array([[0, 0, 1]]), "shape of idx"),
        (np.array([[0.0, 0.0, 1.0, 1.0]]), "integers"),
    ],
)
def test_bad_document_ids(doc, text):
    model = tiny("learned")
    with pytest.raises(ValueError, match=text):
        model(np.zeros((1, 4), np.int64), document_ids=doc)


def test_no_packing_with_a_kv_cache():
    model = tiny("learned")
    with pytest.raises(ValueError, match="kv_cache"):
        model(np.zeros((1, 4), np.int64), kv_cache=model.make_kv_cache(),
              document_ids=np.zeros((1, 4), np.int64))  # fmt: skip
