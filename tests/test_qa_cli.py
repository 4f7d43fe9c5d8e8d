"""``train-qa`` and ``answer`` (numtrans/commands/qa.py) through their argparse parsers."""

from __future__ import annotations

import argparse
import os

import pytest

from numtrans.commands import qa
from numtrans.models import BertConfig, BertModel
from numtrans.qa import read_squad
from numtrans.tokenizers import WordPieceTokenizer

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "squad_tiny.json")


def run(argv):
    parser = argparse.ArgumentParser(prog="numtrans")
    qa.register(parser.add_subparsers(dest="command", required=True))
    args, extra = parser.parse_known_args(argv)
    return args.func(args, extra)


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    examples = read_squad(FIXTURE)
    tok = WordPieceTokenizer.train(
        [e.context for e in examples] + [e.question for e in examples], 600
    )
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    path = tmp_path_factory.mktemp("encoder")
    BertModel(config).save_pretrained(str(path))
    tok.save_pretrained(path)
    return path


def test_train_qa_then_answer(encoder_dir, tmp_path, capsys):
    out = tmp_path / "reader"
    args = ["train-qa", "--model", str(encoder_dir), "--train", FIXTURE, "--out", str(out),
            "--epochs", "0.5", "--lr", "1e-3", "--batch-size", "8", "--max-length", "64",
            "--stride", "16"]  # fmt: skip
    assert run(args) == 0
    assert "40 questions (40 answerable)" in capsys.readouterr().out
    context = read_squad(FIXTURE)[0].context
    (tmp_path / "passage.txt").write_text(context, encoding="utf-8")
    for ctx in (str(tmp_path / "passage.txt"), context):
        assert run(["answer", "--model", str(out), "--context", ctx, "--max-length", "64",
                    "--stride", "16", "Who won Super Bowl 50?"]) == 0  # fmt: skip
        answer, score, span = capsys.readouterr().out.rstrip("\n").split("\t")
        start, end = map(int, span.split("-"))
        assert context[start:end] == answer and float(score) == float(score)


def test_train_qa_step_and_cpu_limits(encoder_dir, tmp_path, capsys):
    base = ["train-qa", "--model", str(encoder_dir), "--train", FIXTURE, "--out",
            str(tmp_path / "r"), "--max-length", "64", "--stride", "16", "--batch-size", "8"]  # fmt: skip
    assert run(base + ["--max-steps", "3", "--max-cpu-minutes", "10"]) == 0
    assert "3 steps, final loss" in capsys.readouterr().out
    assert run(base + ["--max-cpu-minutes", "0.00001"]) == 0  # stops after the first step
    assert "1 steps, final loss" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--max-cpu-minutes must be > 0"):
        run(base + ["--max-cpu-minutes", "0"])


def test_answer_errors(encoder_dir):
    with pytest.raises(ValueError, match="holds no QA reader"):
        run(["answer", "--model", str(encoder_dir), "--context", "Denver won.", "who won?"])
    with pytest.raises(FileNotFoundError):
        run(["answer", "--model", "/no/such/dir", "--context", "x", "who?"])
