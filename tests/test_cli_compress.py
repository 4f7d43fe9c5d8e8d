"""``numtrans distill`` / ``numtrans quantize`` end to end in a subprocess, on a tiny 4-layer
BERT classifier saved as ``numtrans finetune`` saves one; bad input ends in one
``numtrans CMD: error:`` line with exit status 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from numtrans.finetune.data import LabelMap
from numtrans.models.bert import BertConfig
from numtrans.models.bert_heads import BertForSequenceClassification
from numtrans.random import manual_seed
from numtrans.recipes.finetune import save_finetuned
from numtrans.tokenizers import WordPieceTokenizer

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "red", "cat", "blue", "dog",
         "sat", "ran", "big", "small"]  # fmt: skip


def run(args, cwd):
    # the installed numtrans (the repository root is not put on the path here)
    return subprocess.run(
        [sys.executable, "-m", "numtrans.cli", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    base = tmp_path_factory.mktemp("compress")
    manual_seed(0)
    cfg = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=4,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32,
                     num_labels=2)  # fmt: skip
    teacher = BertForSequenceClassification(cfg)
    save_finetuned(str(base / "teacher"), teacher, WordPieceTokenizer(WORDS),
                   LabelMap("classification", ["neg", "pos"]), SimpleNamespace(max_length=16))  # fmt: skip
    rng = np.random.default_rng(0)
    rows = ["text\tlabel"]
    for _ in range(48):
        words = rng.choice(WORDS[5:], size=rng.integers(2, 6))
        rows.append(" ".join(words) + "\t" + ("pos" if "red" in words else "neg"))
    (base / "data.tsv").write_text("\n".join(rows) + "\n")
    return base


def test_distill(work):
    args = ["distill", "--teacher", "teacher", "--data", "data.tsv", "--layers", "2",
            "--out", "student", "--epochs", "2", "--batch-size", "8"]  # fmt: skip
    out = run(args, work)
    assert out.returncode == 0, out.stderr
    assert "4-layer teacher" in out.stdout and "2-layer student" in out.stdout
    assert "teacher logits computed once" in out.stdout
    assert "student: n=5  accuracy" in out.stdout
    config = json.loads((work / "student" / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["architecture"].startswith("BertFor")
    assert (work / "student" / "teacher_logits.safetensors").is_file()
    again = run(args, work)  # same texts: the cached logits, no teacher forward pass
    assert again.returncode == 0, again.stderr
    assert "teacher logits loaded from the cache" in again.stdout
    ev = run(["evaluate", "--model", "student", "--data", "data.tsv"], work)
    assert ev.returncode == 0 and "accuracy" in ev.stdout, ev.stderr


def test_distill_with_intermediate_terms(work):
    args = ["distill", "--teacher", "teacher", "--data", "data.tsv", "--layers", "2",
            "--out", "student_ha", "--epochs", "1", "--batch-size", "8",
            "--hidden-weight", "1", "--attention-weight", "0.5"]  # fmt: skip
    out = run(args, work)
    assert out.returncode == 0, out.stderr
    assert "hidden x1.0, attention x0.5" in out.stdout and "student: n=5" in out.stdout
    one_line_error(run(args[:-4] + ["--hidden-weight", "-1", "--out", "sx"], work), "distill",
                   "hidden_weight and attention_weight must be >= 0")  # fmt: skip


def test_quantize(work):
    out = run(["quantize", "--model", "teacher", "--out", "q8", "--data", "data.tsv"], work)
    assert out.returncode == 0, out.stderr
    assert "quantized BertForSequenceClassification to 8-bit: 26 Linear" in out.stdout
    assert "float32: n=48  accuracy" in out.stdout and "int8:    n=48  accuracy" in out.stdout
    assert json.loads((work / "q8" / "config.json").read_text())["quantization"]["bits"] == 8
    assert (work / "q8" / "vocab.txt").is_file() and (work / "q8" / "labels.json").is_file()
    out4 = run(["quantize", "--model", "teacher", "--out", "q4", "--bits", "4",
                "--group-size", "8"], work)  # fmt: skip
    assert out4.returncode == 0 and "to 4-bit" in out4.stdout, out4.stderr


def one_line_error(out, command, text):
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"numtrans {command}: error:"), out.stderr
    assert text in lines[0], lines[0]


def test_bad_input(work):
    if not (work / "q8").is_dir():
        assert run(["quantize", "--model", "teacher", "--out", "q8"], work).returncode == 0
    one_line_error(run(["quantize", "--model", "q8", "--out", "qq"], work), "quantize",
                   "is already quantized (8-bit)")  # fmt: skip
    one_line_error(run(["distill", "--teacher", "q8", "--data", "data.tsv", "--layers", "2",
                        "--out", "s2"], work), "distill", "is already quantized")  # fmt: skip
    one_line_error(run(["quantize", "--model", "teacher", "--out", "q5", "--bits", "4",
                        "--group-size", "6"], work), "quantize", "does not divide the width 16")  # fmt: skip
    one_line_error(run(["distill", "--teacher", "teacher", "--data", "data.tsv", "--layers",
                        "9", "--out", "s9"], work), "distill", "1 to 4 layers")  # fmt: skip
    mixed = work / "mixed"  # int8 weights beside a float config
    shutil.copytree(work / "teacher", mixed)
    shutil.copyfile(work / "q8" / "model.safetensors", mixed / "model.safetensors")
    one_line_error(run(["quantize", "--model", "mixed", "--out", "qm"], work), "quantize",
                   "holds int8 tensors")  # fmt: skip
