"""SFT with packed rows (``train_sft(pack=True)``, ``numtrans sft --pack``): the rows hold every
example once, and a packed batch's loss (per token and per example) is the unpacked one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import numtrans as nt
from numtrans.instruct import add_chat_tokens
from numtrans.instruct.sft import IGNORE_INDEX, bucket_batches, pack_batches, sft_example
from numtrans.instruct.train import _example_mean_loss, train_sft
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.tokenizers.bpe import ByteBPETokenizer


@pytest.fixture(scope="module")
def tok():
    t = ByteBPETokenizer.train("translate this: hello. is it good? positive negative " * 10, 290)
    add_chat_tokens(t)
    return t


def _msgs(q, a):
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def _examples(tok):
    convs = [_msgs("is it good?" + " hello" * n, "positive" if n % 2 else "negative hello" * n)
             for n in range(1, 8)]  # fmt: skip
    return [sft_example(c, tok, 48) for c in convs]


def _model(tok, dtype=np.float64):
    nt.manual_seed(0)
    model = GPT(GPTConfig(block_size=48, vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=16))
    for p in model.parameters():
        p.data = p.data.astype(dtype) * 10  # larger weights: every position matters
    return model


def test_rows_hold_every_example_once(tok):
    ex = _examples(tok)
    batches = pack_batches(ex, batch_size=2, block_size=48, pad_id=0)
    rows = [(x[b], y[b], d[b]) for x, y, d in batches for b in range(len(x))]
    assert len(rows) < len(ex)  # packing saved rows
    found = []
    for x, y, d in rows:
        assert len(x) <= 48 and (np.diff(d) >= 0).all()
        for doc in np.unique(d):
            span = d == doc
            if (y[span] != IGNORE_INDEX).any():
                found.append((tuple(x[span]), tuple(y[span])))
    assert sorted(found) == sorted((tuple(x), tuple(y)) for x, y in ex)
    with pytest.raises(ValueError, match="more than block_size"):
        pack_batches(ex, 2, block_size=10, pad_id=0)


@pytest.mark.parametrize("loss_per", ["token", "example"])
def test_a_packed_batch_has_the_unpacked_loss(tok, loss_per):
    ex = _examples(tok)
    model = _model(tok)
    (x, y, doc), = pack_batches(ex, batch_size=len(ex), block_size=48, pad_id=0)  # fmt: skip
    (bx, by), = bucket_batches(ex, batch_size=len(ex), pad_id=0)  # fmt: skip
    if loss_per == "token":
        packed, plain = model(x, y, document_ids=doc)[1], model(bx, by)[1]
    else:
        packed, plain = _example_mean_loss(model, x, y, doc), _example_mean_loss(model, bx, by)
    assert packed.item() == pytest.approx(plain.item(), rel=1e-12)
    unmasked = model(x, y)[1] if loss_per == "token" else _example_mean_loss(model, x, y)
    assert abs(unmasked.item() - plain.item()) > 1e-6  # the mask is what makes them equal


def test_train_sft_with_packing_lowers_the_loss(tok):
    nt.manual_seed(0)
    model = GPT(GPTConfig(block_size=48, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16))
    convs = [_msgs("is it good?", "positive"), _msgs("is it bad?", "negative")] * 3
    losses = train_sft(model, tok, convs, steps=30, batch_size=1, lr=1e-2, pack=True,
                       loss_per="example")  # fmt: skip
    assert len(losses) == 30 and losses[-1] < 0.5 * losses[0]


def test_cli_sft_pack(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "numtrans.cli", "sft", "--out", "m", "--pack", "--max-per-task",
         "20", "--steps", "3", "--batch-size", "2", "--vocab-size", "300", "--block-size", "96",
         "--n-layer", "1", "--n-head", "2", "--n-embd", "32"],
        cwd=tmp_path, env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "m" / "training.json").read_text())
    assert record["pack"] is True and record["conversations"] == 40
