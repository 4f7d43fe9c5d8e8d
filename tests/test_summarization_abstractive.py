"""Abstractive summarisation: the CSL title recipe (numtrans/recipes/summarization.py) on a tiny
CSL-format file, trained in seconds with and without denoising pretraining; the saved
summariser (save/load, beam options, bad input); ``numtrans summarize --model DIR``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from numtrans.recipes.summarization import SummarizationConfig, load_csl, run
from numtrans.summarization import AbstractiveSummarizer, is_summarizer_dir

TOPICS = ["水稻", "桥梁", "电池", "肝癌", "卫星", "森林", "钢材", "语言"]


def abstract(topic: str) -> str:
    return f"本文研究了{topic}的性质。实验表明{topic}的结构很稳定。结论对{topic}有用。"


def tiny_config(tsv, out_dir, **overrides) -> SummarizationConfig:
    values = dict(
        csl_files=(str(tsv),), out_dir=str(out_dir), valid_fraction=0.15, test_fraction=0.15,
        d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64,
        dropout=0.0, max_steps=150, warmup_steps=30, lr_factor=0.5, max_tokens=600,
        min_char_freq=1, label_smoothing=0.0, pretrain_corpora=(), log_interval=20,
        eval_interval=40, pretrain_texts=tuple(abstract(t)[::-1] for t in TOPICS),
    )  # fmt: skip
    return SummarizationConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("csl")
    tsv = root / "ts.tsv"
    tsv.write_text("".join(f"to title\t{abstract(t)}\t{t}的研究\n" for t in TOPICS) * 3, "utf-8")
    result = run(tiny_config(tsv, root / "model"), say=lambda *a: None)
    return tsv, root / "model", result


def test_the_recipe_learns_the_training_titles(trained):
    _, model_dir, result = trained
    train, valid, test = result["splits"]
    assert len(train) + len(valid) + len(test) == 24 and len(test) == 3  # one topic x 3 copies
    assert {a for a, _ in train}.isdisjoint(a for a, _ in test)  # split by abstract
    losses = result["finetune"]["train_loss"]
    assert losses[-1] < 0.1 * losses[0]
    summarizer = result["summarizer"]
    sources = sorted({a for a, _ in train})
    titles = dict(train)
    assert summarizer.summarize(sources) == [titles[a] for a in sources]
    assert is_summarizer_dir(str(model_dir))
    loaded = AbstractiveSummarizer.load(str(model_dir))
    assert loaded.summarize(sources, beam_size=1) == summarizer.summarize(sources, beam_size=1)
    assert loaded.settings["no_repeat_ngram_size"] == 3 and loaded.settings["beam_size"] == 4


def test_denoising_pretraining_stage(trained, tmp_path):
    tsv, _, plain = trained
    cfg = tiny_config(tsv, tmp_path / "pre", max_steps=40, pretrain_steps=60)
    result = run(cfg, say=lambda *a: None)
    pre = result["pretrain"]["train_loss"]
    assert result["pretrain"]["steps"] == 60 and pre[-1] < 0.5 * pre[0]  # it learns to rebuild
    assert result["finetune"]["steps"] == 40
    # the same vocabulary either way (built from the training pairs and the pretraining text)
    assert result["tokenizer"].tokens == plain["tokenizer"].tokens
    # fine-tuning starts from the pretrained weights: its losses differ from a fresh start's
    fresh = run(tiny_config(tsv, tmp_path / "fresh", max_steps=40), say=lambda *a: None)
    assert fresh["finetune"]["steps"] == 40 and "pretrain" not in fresh
    assert fresh["finetune"]["train_loss"] != result["finetune"]["train_loss"]


def test_bad_input(trained, tmp_path):
    _, model_dir, result = trained
    summarizer = result["summarizer"]
    with pytest.raises(TypeError, match="list of strings"):
        summarizer.summarize(abstract("水稻"))
    with pytest.raises(ValueError, match="empty"):
        summarizer.summarize(["  "])
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        AbstractiveSummarizer.load(str(tmp_path / "missing"))
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match="not an abstractive summarisation model"):
        AbstractiveSummarizer.load(str(tmp_path / "other"))
    bad = tmp_path / "bad.tsv"
    bad.write_text("to title\tan abstract only\n", "utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:1: expected"):
        load_csl(str(bad))
    with pytest.raises(ValueError, match="divisible"):
        tiny_config(bad, tmp_path, d_model=30, nhead=4)
    with pytest.raises(ValueError, match="mask_ratio"):
        tiny_config(bad, tmp_path, mask_ratio=1.5)


def cli(args, cwd, stdin=None):
    # the installed numtrans, run outside the repository (see tests/test_cli_kb.py)
    return subprocess.run([sys.executable, "-m", "numtrans.cli", *args], cwd=cwd, input=stdin,
                          env=dict(os.environ), capture_output=True, text=True, timeout=120)  # fmt: skip


def test_summarize_command(trained, tmp_path):
    _, model_dir, result = trained
    train = result["splits"][0]
    (tmp_path / "a.txt").write_text(train[0][0] + "\n", "utf-8")
    out = cli(["summarize", "--model", str(model_dir), "a.txt"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == train[0][1]
    lines = "\n".join(a for a, _ in train[:3]) + "\n\n"
    out = cli(["summarize", "--model", str(model_dir), "-", "--per-line", "--beam-size", "2",
               "--no-repeat-ngram-size", "0"], tmp_path, lines)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-3:] == [t for _, t in train[:3]]
    for args, match in (
        (["--method", "lead"], "is an abstractive model"),
        (["--beam-size", "0"], "--beam-size must be >= 1"),
    ):
        out = cli(["summarize", "--model", str(model_dir), "a.txt", *args], tmp_path)
        assert out.returncode == 2 and match in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    out = cli(["summarize", "--method", "abstractive", "a.txt"], tmp_path)
    assert out.returncode == 2 and "needs --model" in out.stderr
