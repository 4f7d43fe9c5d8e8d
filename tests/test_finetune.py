"""Pretrain -> fine-tune -> evaluate with tiny models: losses fall, files are written, freezing,
per-part learning rates, regression, GPT's last-token pooling and the command line."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

import numtrans as nt
from numtrans.commands.finetune import register
from numtrans.finetune import LabeledData
from numtrans.finetune.models import body_and_head, classifier_from_pretrained
from numtrans.models import (
    GPT,
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    GPTConfig,
)
from numtrans.models.gpt_heads import GPTForSequenceClassification
from numtrans.recipes.finetune import (
    FinetuneConfig,
    build_optimizer,
    evaluate_dir,
    finetune,
    load_finetuned,
)
from numtrans.recipes.mlm import MLMConfig, pretrain_mlm
from numtrans.tokenizers import CharTokenizer

GOOD = "good great fine nice superb lovely".split()
BAD = "bad awful poor nasty dull boring".split()
FILLER = "the film was a plot and acting it is this movie".split()


def synthetic(n: int, seed: int = 0) -> LabeledData:
    """Sentiment by keyword: one good or bad word among filler words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, size=int(rng.integers(3, 8))))
        words.insert(int(rng.integers(len(words) + 1)), rng.choice(GOOD if label else BAD))
        texts.append(" ".join(words))
        labels.append("pos" if label else "neg")
    return LabeledData(texts, labels, list(range(1, n + 1)), "synthetic")


TINY_MLM = MLMConfig(
    vocab_size=80, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=32, max_length=16, batch_size=16, max_steps=60, lr=1e-2,
    eval_interval=30, eval_batches=2, log_interval=1, dropout=0.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("mlm"))
    result = pretrain_mlm(synthetic(200).texts, TINY_MLM, out_dir=out, say=lambda *a: None)
    losses = [v for v in result["history"]["train_loss"] if v is not None]
    assert np.mean(losses[-10:]) < np.mean(losses[:3]) - 0.5  # MLM loss falls (ln 80 = 4.4)
    return out


def quiet(*args):
    pass


def test_mlm_directory_and_its_body_in_a_classifier(mlm_dir):
    assert {"config.json", "model.safetensors", "vocab.txt"} <= set(os.listdir(mlm_dir))
    with open(os.path.join(mlm_dir, "config.json")) as f:
        assert json.load(f)["architecture"] == "BertForMaskedLM"
    body = BertForMaskedLM.from_pretrained(mlm_dir).bert.state_dict()
    for pooling in ("mean", "pooled"):  # "pooled" adds a new pooler to the pretrained body
        clf = classifier_from_pretrained(mlm_dir, 2, pooling).bert.state_dict()
        assert set(clf) - set(body) == (
            {"pooler.dense.weight", "pooler.dense.bias"} if pooling == "pooled" else set()
        )
        for name, value in body.items():
            np.testing.assert_array_equal(clf[name], value, err_msg=name)


def test_finetune_classification_loss_falls_and_saves(mlm_dir, tmp_path):
    cfg = FinetuneConfig(epochs=6, batch_size=16, lr=1e-2, log_interval=5, dropout=0.0)
    out = str(tmp_path / "clf")
    res = finetune(mlm_dir, synthetic(160, 1), cfg, val=synthetic(60, 2), out_dir=out, say=quiet)
    losses = [v for v in res.history["train_loss"] if v is not None]
    assert np.mean(losses[-3:]) < 0.7 * losses[0]
    assert res.metrics["accuracy"] > 0.8
    with open(os.path.join(out, "labels.json")) as f:
        saved = json.load(f)
    # max_length: the default 64, cut to the model's 16 positions
    assert saved == {"task": "classification", "labels": ["neg", "pos"], "max_length": 16}
    again = evaluate_dir(out, synthetic(60, 2))
    assert again["accuracy"] == pytest.approx(res.metrics["accuracy"])
    assert np.sum(again["confusion_matrix"]) == 60


def test_freezing_leaves_the_body_unchanged(mlm_dir):
    before = classifier_from_pretrained(mlm_dir, 2).state_dict()
    cfg = FinetuneConfig(epochs=2, batch_size=16, lr=1e-2, freeze=True)
    res = finetune(mlm_dir, synthetic(64, 3), cfg, val=synthetic(16, 4), say=quiet)
    after = res.model.state_dict()
    for name, value in after.items():
        if name.startswith("bert."):
            np.testing.assert_array_equal(value, before[name], err_msg=name)
    assert not np.array_equal(after["classifier.weight"], before["classifier.weight"])


def test_body_learning_rate_and_frozen_embeddings(mlm_dir):
    model = classifier_from_pretrained(mlm_dir, 2)
    cfg = FinetuneConfig(lr=1e-3, body_lr=1e-5, freeze_embeddings=True)
    optimizer, _ = build_optimizer(model, cfg, total_steps=100)
    body, head = body_and_head(model)
    assert [n for n, _ in head] == ["classifier.weight", "classifier.bias"]
    lr_of = {id(p): g["initial_lr"] for g in optimizer.param_groups for p in g["params"]}
    assert all(lr_of[id(p)] == 1e-3 for _, p in head)
    emb = model.bert.embeddings.word_embeddings.weight
    assert id(emb) not in lr_of and not emb.requires_grad
    assert all(lr_of[id(p)] == 1e-5 for n, p in body if "word_embeddings" not in n)


def test_regression_uses_mse(mlm_dir, tmp_path):
    data = synthetic(96, 5)
    data.labels = [len(t.split()) / 4.0 for t in data.texts]  # predict the length
    model = classifier_from_pretrained(mlm_dir, 1)
    assert model.is_regression and model.config.problem_type == "regression"
    from numtrans.finetune.models import encode_texts, load_tokenizer, make_batch

    tok = load_tokenizer(mlm_dir)
    batch = make_batch(encode_texts(tok, data.texts[:8], 64), tok.pad_id, np.array(data.labels[:8]))
    model.eval()
    out = model(**batch)
    expected = np.mean((out.logits.numpy()[:, 0] - np.array(data.labels[:8])) ** 2)
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    cfg = FinetuneConfig(task="regress", epochs=4, lr=1e-2, batch_size=16)
    res = finetune(mlm_dir, data, cfg, out_dir=str(tmp_path), say=quiet)
    assert res.metrics["task"] == "regression" and np.isfinite(res.metrics["mse"])
    assert json.load(open(tmp_path / "labels.json"))["task"] == "regression"


def test_pooling_choices(mlm_dir):
    ids = np.array([[2, 10, 11, 3, 0, 0], [2, 12, 13, 14, 15, 3]])
    mask = (ids != 0).astype(np.int64)
    logits = {}
    for pooling in ("mean", "cls", "pooled"):
        nt.manual_seed(0)
        model = classifier_from_pretrained(mlm_dir, 2, pooling=pooling).eval()
        assert (model.bert.pooler is not None) == (pooling == "pooled")
        with nt.no_grad():
            logits[pooling] = model(ids, attention_mask=mask).logits.numpy()
            alone = model(ids[:1, :4]).logits.numpy()
        np.testing.assert_allclose(alone, logits[pooling][:1], atol=1e-5)  # padding ignored
    assert not np.allclose(logits["mean"], logits["cls"])


def test_gpt_classifier_reads_the_last_real_token():
    nt.manual_seed(0)
    gpt = GPT(GPTConfig(block_size=16, vocab_size=30, n_layer=2, n_head=2, n_embd=16))
    model = GPTForSequenceClassification.from_gpt(gpt, num_labels=3).eval()
    ids = np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]])
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    with nt.no_grad():
        batch = model(ids, attention_mask=mask).logits.numpy()
        alone = model(ids[:1, :3]).logits.numpy()
        other_pads = model(np.where(mask == 1, ids, 29), attention_mask=mask).logits.numpy()
        other_last = model(np.where(ids == 7, 20, ids), attention_mask=mask).logits.numpy()
        h = model.hidden_states(ids[:1, :3])
    np.testing.assert_allclose(batch[:1], alone, atol=1e-6)
    np.testing.assert_allclose(other_pads, batch, atol=1e-6)  # pads are never read
    assert not np.allclose(other_last[0], batch[0])  # the last real token is
    np.testing.assert_allclose(batch[0], h.numpy()[0, 2] @ model.score.weight.numpy().T, atol=1e-5)
    with pytest.raises(ValueError, match="right padding"):
        model(ids, attention_mask=mask[:, ::-1])


def test_gpt_finetunes_from_a_directory(tmp_path):
    data = synthetic(64, 6)
    tok = CharTokenizer.from_text(" ".join(data.texts))
    nt.manual_seed(0)
    gpt = GPT(GPTConfig(block_size=64, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16))
    gpt.save_pretrained(str(tmp_path / "gpt"))
    tok.save(str(tmp_path / "gpt" / "tokenizer.json"))
    cfg = FinetuneConfig(epochs=2, lr=3e-3, batch_size=16)
    finetune(str(tmp_path / "gpt"), data, cfg, out_dir=str(tmp_path / "clf"), say=quiet)
    model, tokenizer, labels, _ = load_finetuned(str(tmp_path / "clf"))
    assert isinstance(model, GPTForSequenceClassification) and labels.names == ["neg", "pos"]
    assert isinstance(tokenizer, CharTokenizer)


def test_bert_classifier_config_checks():
    with pytest.raises(ValueError, match="classifier_pooling"):
        BertConfig(classifier_pooling="max")
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=20,
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
            max_position_embeddings=8,
            num_labels=3,
        )  # fmt: skip
    )
    assert model.bert.pooler is not None  # "pooled" by default, as in Hugging Face


def run_cli(*argv) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args, extra = parser.parse_known_args(list(argv))
    return args.func(args, extra)


def test_cli_finetune_and_evaluate(mlm_dir, tmp_path, capsys):
    data = synthetic(80, 7)
    path = tmp_path / "train.tsv"
    path.write_text("".join(f"{t}\t{y}\n" for t, y in zip(data.texts, data.labels)))
    out = str(tmp_path / "clf")
    assert run_cli("finetune", "--model", mlm_dir, "--task", "classify", "--data", str(path),
                   "--out", out, "--epochs", "1", "--lr", "1e-2") == 0  # fmt: skip
    png = str(tmp_path / "cm.png")
    assert run_cli("evaluate", "--model", out, "--data", str(path), "--confusion-matrix", png,
                   "--json", str(tmp_path / "m.json")) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "macro avg" in printed and os.path.isfile(png)
    assert json.load(open(tmp_path / "m.json"))["n"] == 80
    bad = tmp_path / "bad.tsv"
    bad.write_text("fine film\tpos\nno label here\n")
    with pytest.raises(ValueError, match=r"bad.tsv, line 2: expected 2 fields, found 1"):
        run_cli("evaluate", "--model", out, "--data", str(bad))
    with pytest.raises(FileNotFoundError, match="labels.json"):
        run_cli("evaluate", "--model", mlm_dir, "--data", str(path))
    with pytest.raises(ValueError, match="unknown setting"):
        run_cli("pretrain-mlm", "--out", str(tmp_path / "m"), "--layers=3")
