"""The mixture pretraining recipe (numtrans/recipes/mixture.py) on tiny data, in seconds: the
split, cleaning and decontamination, document ids, the byte accounting of bits/byte, a run whose
directory ``numtrans sft --model`` accepts, and the command line."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from numtrans.data.cleaning import clean, near_duplicates_of
from numtrans.recipes import mixture
from numtrans.recipes.mixture import EOT, document_ids, make_config, prepare_documents

TINY = dict(max_docs_per_source=40, vocab_size=300, n_layer=1, n_head=2, n_embd=32,
            block_size=32, batch_size=4, max_steps=8, eval_interval=4, log_interval=4)  # fmt: skip


def test_near_duplicates_of_a_reference_and_two_scripts():
    ref = ["the quick brown fox jumps over the lazy dog near the river", "我们今天去学校上课了"]
    docs = ["the quick brown fox jumps over the lazy dog near the river!",  # near
            "我们今天去学校上课了", "a different sentence entirely, about tea"]  # fmt: skip
    assert near_duplicates_of(docs, ref, 0.8) == {0, 1}
    kept, report = clean(["hello there friend", "你好朋友们", "12345 678"], min_alpha=0.0,
                         language=("latin", "han"))  # fmt: skip
    assert kept == ["hello there friend", "你好朋友们"] and report["language"] == 1


def test_document_ids_keep_a_separator_with_the_document_it_ends():
    x = np.array([[5, 9, 3, 9, 9, 7]])  # 9 = separator
    assert document_ids(x, 9).tolist() == [[0, 0, 1, 1, 2, 3]]  # 9, 9: an empty document


def fake_sources(monkeypatch):
    words = ["river", "mountain", "teacher", "window", "garden", "letter", "winter", "doctor"]
    english = [f"the {a} saw the {b} and the {c} at noon" for a in words for b in words[:3]
               for c in words[5:]]  # fmt: skip
    chinese = [f"我们{i}今天去学校" * 2 for i in "一二三四五六七八九十"]
    found = {"tatoeba_en": english * 2, "tatoeba_zh": chinese, "sentiment": ["!!! ??? ..."] * 3,
             "shakespeare": english[:20], "sishu": ["《论语》"]}  # fmt: skip
    monkeypatch.setattr(mixture, "source_documents", lambda name: list(found[name]))


@pytest.mark.parametrize("cleaned", [True, False])
def test_the_split_cleans_validation_and_decontaminates_training(monkeypatch, cleaned):
    fake_sources(monkeypatch)
    cfg = make_config("quick", {"clean": cleaned, "val_fraction": 0.2, "min_chars": 6})
    train, val, report = prepare_documents(cfg, say=lambda *_: None)
    assert len(set(val)) == len(val) and "!!! ??? ..." not in val  # validation is cleaned
    assert not set(train) & set(val)  # no validation document (or its copy) is trained on
    assert report["val"] == len(val) and report["train"] == len(train)
    if cleaned:
        rep = report["train_cleaning"]
        assert len(set(train)) == len(train) and rep["exact_duplicates"] > 0
        assert rep["char_class"] + rep["length"] >= 1
    else:
        assert report["train_cleaning"] is None and len(set(train)) < len(train)
        assert report["decontaminated"] > 0  # the copies of validation documents went


def test_the_bundled_sources_hold_out_the_test_splits():
    from numtrans.data.corpus import load_corpus
    from numtrans.translation.data import split_pairs

    _, valid, test = split_pairs(load_corpus("tatoeba_cmn_eng"), seed=0)
    held = {en for en, _ in valid + test}
    assert not held & set(mixture.source_documents("tatoeba_en"))
    assert len(mixture.source_documents("sentiment")) == 2700  # 3,000 minus the 10% split


def test_a_tiny_run_writes_a_base_that_sft_loads(tmp_path):
    from numtrans.instruct.train import load_base_model

    cfg = make_config("quick", {**TINY, "out_dir": str(tmp_path / "m"), "document_mask": True})
    record = mixture.run(cfg, say=lambda *_: None)
    val = record["val"]
    assert math.isfinite(val["bits_per_byte"]) and val["nats_per_token"] < math.log(300)
    model, tok = load_base_model(str(tmp_path / "m"))
    assert EOT in tok.get_vocab() and model.config.vocab_size == tok.vocab_size
    saved = json.loads((tmp_path / "m" / "mixture.json").read_text())
    assert saved["data"]["train_cleaning"]["input"] > saved["data"]["train"]
    # bits/byte counts every UTF-8 byte of the validation stream's targets once
    _, val_docs, _ = prepare_documents(cfg, say=lambda *_: None)
    ids = mixture.token_stream(val_docs, tok)
    first = 1 if ids[0] == tok.get_vocab()[EOT] else len(tok.token_bytes(int(ids[0])))
    total = sum(len(d.encode()) for d in val_docs) + len(val_docs)
    assert val["bytes"] == total - first and val["tokens"] == len(ids) - 1


def test_bad_settings():
    with pytest.raises(ValueError, match="unknown source"):
        make_config("quick", {"sources": ("tatoeba_en", "wikipedia")})
    with pytest.raises(ValueError, match="unknown setting"):
        make_config("quick", {"n_layers": 2})
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("huge")
    with pytest.raises(ValueError, match="learning_rate='abc' is invalid"):
        make_config("quick", {"learning_rate": "abc"})
    with pytest.raises(ValueError, match="clean=1 is invalid"):
        make_config("quick", {"clean": 1})
    with pytest.raises(ValueError, match="out_dir"):
        make_config("quick", {"out_dir": __file__ + "/sub"})  # under a file


def cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "numtrans.cli", "pretrain-mixture", *args],
                          cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_cli_compare_and_its_errors(tmp_path):
    flags = [f"--{k}={v}" for k, v in TINY.items()]
    out = cli(["--compare", "--out-dir", "cmp", *flags], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "validation bits/byte: cleaned" in out.stdout
    clean_run = json.loads((tmp_path / "cmp" / "clean" / "mixture.json").read_text())
    raw_run = json.loads((tmp_path / "cmp" / "raw" / "mixture.json").read_text())
    assert clean_run["data"]["val"] == raw_run["data"]["val"]  # the same held-out set
    assert raw_run["data"]["train"] > clean_run["data"]["train"]
    sft = subprocess.run([sys.executable, "-m", "numtrans.cli", "sft", "--model", "cmp/clean",
                          "--out", "chat", "--max-per-task", "5", "--steps", "2", "--batch-size",
                          "2", "--pack"], cwd=tmp_path, env=dict(os.environ),
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert sft.returncode == 0, sft.stderr  # the base is what `numtrans sft --model` starts from
    assert (
        json.loads((tmp_path / "chat" / "training.json").read_text())["base_model"] == "cmp/clean"
    )
    bad = cli(["--compare", "--no-clean"], tmp_path)
    assert bad.returncode == 2 and "leave out --no-clean" in bad.stderr.strip().splitlines()[-1]
