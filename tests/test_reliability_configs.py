"""Issue 14 (item 6) for the MLM and translation jobs: every setting is checked where the config is
built, with one line naming the field, the value and what is allowed — in the Python API and on
the command line (a real subprocess, exit status 2, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from numtrans.recipes.finetune import FinetuneConfig
from numtrans.recipes.mlm import MLMConfig
from numtrans.recipes.translation import make_config
from numtrans.validation import POSITIVE_INT, check_settings, optional

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("batch_size", 0, "batch_size=0 is invalid: it must be a whole number >= 1"),
        ("max_steps", -3, "max_steps=-3 is invalid"),
        ("eval_interval", 0, "eval_interval=0"),
        ("lr", "abc", "lr='abc' is invalid: it must be a finite number > 0"),
        ("lr", float("nan"), "lr=nan"),
        ("val_fraction", 1.5, "strictly between 0 and 1"),
        ("mlm_probability", 0, "mlm_probability=0"),
        ("max_length", 0, "max_length=0"),
        ("max_length", 2, "max_length=2 is invalid: it must be >= 3"),
        ("dropout", 1.0, "in [0, 1)"),
        ("batch_size", True, "batch_size=True"),  # a bool is not a number
        ("num_attention_heads", 3, "divisible by num_attention_heads=3"),
        ("min_lr", 1.0, "must not exceed lr"),
    ],
)
def test_mlm_config(field, value, words):
    with pytest.raises(ValueError) as info:
        MLMConfig(**{field: value})
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("max_tokens", 0, "max_tokens=0 is invalid"),
        ("warmup_steps", 0, "warmup_steps=0 is invalid"),
        ("max_steps", 0, "max_steps=0"),
        ("time_limit", -1.0, "time_limit=-1.0 is invalid: it must be None or a finite number > 0"),
        ("grad_clip", 0, "grad_clip=0"),
        ("valid_fraction", 0.6, "valid_fraction=0.6 + test_fraction=0.5 leaves no training pairs"),
        ("nhead", 3, "d_model=64 must be divisible by nhead=3"),
        ("beam_size", 0, "beam_size=0"),
        ("data", "", "data='' is invalid: it must be non-empty text"),
    ],
)
def test_translation_config(field, value, words):
    overrides = {field: value}
    if field == "valid_fraction":
        overrides["test_fraction"] = 0.5
    with pytest.raises(ValueError) as info:
        make_config("tiny", overrides)
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("batch_size", 0, "batch_size=0 is invalid: it must be a whole number >= 1"),
        ("epochs", 0, "epochs=0 is invalid: it must be a finite number > 0"),
        ("max_steps", 0, "max_steps=0 is invalid: it must be None or a whole number >= 1"),
        ("max_steps", -3, "max_steps=-3"),
        ("max_length", 0, "max_length=0 is invalid"),
        ("lr", float("inf"), "lr=inf"),
        ("pooling", "max", "pooling='max' is invalid: it must be one of 'mean', 'cls', 'pooled'"),
        ("task", "translate", "task must be 'classify' or 'regress'"),
        ("warmup_fraction", 1.0, "warmup_fraction=1.0"),
        ("freeze", "yes", "freeze='yes' is invalid: it must be true or false"),
    ],
)
def test_finetune_config(field, value, words):
    with pytest.raises(ValueError) as info:
        FinetuneConfig(**{field: value})
    assert words in str(info.value) and "\n" not in str(info.value)


def test_presets_and_defaults_are_valid():
    MLMConfig()
    FinetuneConfig()
    FinetuneConfig(task="regress", max_steps=5, body_lr=0.0, dropout=None, grad_clip=None)
    for preset in ("tiny", "small"):
        make_config(preset)


def test_check_settings_rules():
    class Cfg:
        n = 3
        m = None

    check_settings(Cfg, {"n": POSITIVE_INT, "m": optional(POSITIVE_INT)})
    Cfg.m = 0
    with pytest.raises(ValueError, match="m=0 is invalid: it must be None or a whole number >= 1"):
        check_settings(Cfg, {"n": POSITIVE_INT, "m": optional(POSITIVE_INT)})
    Cfg.n = 2.0  # a float where a whole number belongs
    with pytest.raises(ValueError, match="n=2.0"):
        check_settings(Cfg, {"n": POSITIVE_INT})


def _cli(*args):
    env = dict(os.environ, NUMTRANS_BACKEND="numpy")
    env.pop("NUMTRANS_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "numtrans.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=FIXTURES)  # fmt: skip
    return proc.returncode, proc.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (("pretrain-mlm", "--max-steps", "0"), "max_steps=0 is invalid"),
        (("pretrain-mlm", "--batch_size=0"), "batch_size=0 is invalid"),
        (("pretrain-mlm", "--lr=abc"), "lr='abc' is invalid"),
        (("train-translation", "--preset", "tiny", "--max_tokens=0"), "max_tokens=0 is invalid"),
        (("train-translation", "--preset", "tiny", "--eval_interval=0"), "eval_interval=0"),
        (("finetune", "--model", "m", "--data", "d.tsv", "--batch-size", "0"), "batch_size=0"),
        (("finetune", "--model", "m", "--data", "d.tsv", "--epochs", "0"), "epochs=0"),
        (("finetune", "--model", "m", "--data", "d.tsv", "--max-steps", "0"), "max_steps=0"),
        (("finetune", "--model", "m", "--data", "d.tsv", "--max-length", "0"), "max_length=0"),
    ],
)
def test_command_line_bad_settings(args, words):
    status, err = _cli(*args)
    assert status == 2, err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_mlm_output_path_checked_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    status, err = _cli("pretrain-mlm", "--max-steps", "1", "--out", str(blocker / "sub"))
    assert status == 2 and "is not a directory" in err, err


def test_finetune_output_path_checked_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    rows = tmp_path / "rows.tsv"
    rows.write_text("text\tlabel\n" + "".join(f"text {i}\t{i % 2}\n" for i in range(20)))
    status, err = _cli("finetune", "--model", str(tmp_path / "no-model"), "--data", str(rows),
                       "--out", str(blocker))  # fmt: skip
    assert status == 2 and "exists and is not a directory" in err, err


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--max-new-tokens", "-5", "max_new_tokens"),
        ("--no-repeat-ngram-size", "-1", "no_repeat_ngram_size"),
        ("--repetition-penalty", "0", "repetition_penalty"),
        ("--temperature", "nan", "temperature"),
    ],
)
def test_generate_bad_settings(tmp_path, flag, value, words):
    from numtrans.models.gpt import GPT, GPTConfig
    from numtrans.tokenizers import CharTokenizer

    GPT(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=1, n_embd=8)).save_pretrained(
        tmp_path
    )
    CharTokenizer.from_text("abcde").save(str(tmp_path / "tokenizer.json"))
    status, err = _cli("generate", "--model", str(tmp_path), flag, value)
    assert status == 2, err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
