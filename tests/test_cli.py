"""The ``numtrans`` command: the main job end to end (tiny), generation, clear errors."""

import subprocess
import sys

import pytest

from numtrans.cli import main


def test_pretrain_then_generate(tmp_path, capsys):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("to be or not to be, that is the question.\n" * 40)
    out = tmp_path / "model"
    code = main(
        [
            "pretrain",
            "--data",
            str(corpus),
            "--out-dir",
            str(out),
            "--max-steps",
            "6",
            "--no-progress",
            "--n_layer=1",
            "--n_embd=16",
            "--n_head=2",
            "--block_size=16",
            "--batch_size=4",
            "--warmup_steps=2",
            "--eval_interval=3",
            "--eval_batches=2",
            "--log_interval=3",
            "--sample_tokens=20",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "val loss" in text and "---- sample ----" in text
    for name in ("config.json", "model.safetensors", "tokenizer.json", "history.json"):
        assert (out / name).is_file()
    assert (
        main(
            [
                "generate",
                "--model",
                str(out),
                "--prompt",
                "to be",
                "--max-new-tokens",
                "12",
                "--seed",
                "0",
            ]
        )
        == 0
    )
    generated = capsys.readouterr().out
    assert generated.startswith("to be") and len(generated.strip()) >= len("to be")


def test_resume_from_checkpoint(tmp_path, capsys):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("abcdefgh " * 200)
    args = [
        "pretrain",
        "--data",
        str(corpus),
        "--out-dir",
        str(tmp_path / "m"),
        "--no-progress",
        "--n_layer=1",
        "--n_embd=8",
        "--n_head=2",
        "--block_size=8",
        "--batch_size=2",
        "--warmup_steps=1",
        "--eval_interval=2",
        "--eval_batches=1",
        "--sample_tokens=5",
    ]
    assert main(args + ["--max-steps", "4"]) == 0
    assert main(args + ["--max-steps", "4", "--resume"]) == 0
    assert "resumed from step 4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pretrain", "--data", "/no/such/file.txt"], "not found"),
        (["pretrain", "--preset", "huge"], "unknown preset"),
        (["pretrain", "--n_layers=3"], "unknown setting"),
        (["pretrain", "--dropout"], "needs a value"),
        (["generate", "--model", "/no/such/dir"], "no such model directory"),
    ],
)
def test_bad_arguments_give_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_help_everywhere():
    for argv in ([], ["pretrain"], ["generate"], ["info"]):
        result = subprocess.run(
            [sys.executable, "-m", "numtrans.cli", *argv, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "usage: numtrans" in result.stdout


def test_info_lists_backends(capsys):
    assert main(["info"]) == 0
    assert "numpy" in capsys.readouterr().out


def test_every_model_command_says_first_which_backend_runs(capsys, tmp_path):
    """Issue 13: the first line names the attention backend (native kernel or NumPy reference)."""
    from numtrans import backends, cli

    missing = str(tmp_path / "missing.txt")
    assert cli.main(["pretrain", "--data", missing, "--no-progress"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == backends.describe() and out[0].startswith("attention: ")
    with backends.use("numpy"):
        cli.main(["pretrain", "--data", missing, "--no-progress"])
    assert "NumPy reference" in capsys.readouterr().out.splitlines()[0]
    cli.main(["generate", "--model", str(tmp_path)])  # stdout is the product: no line there
    assert "attention:" not in capsys.readouterr().out


def test_settings_on_the_command_line_are_python_literals_or_true_false():
    from numtrans.commands.overrides import parse_overrides

    got = parse_overrides(["--n_layer=6", "--dropout", "0.1", "--top_k=None", "--bias=false",
                           "--ddp_zero=True", "--pos=rope", "--data", "a b.txt"])  # fmt: skip
    assert got == {"n_layer": 6, "dropout": 0.1, "top_k": None, "bias": False, "ddp_zero": True,
                   "pos": "rope", "data": "a b.txt"}  # fmt: skip
    assert isinstance(got["n_layer"], int) and got["bias"] is False
    with pytest.raises(ValueError, match="needs a value"):
        parse_overrides(["--seed"])
