"""Issue 14, item 2: a damaged weight file or config gives one line naming the file."""

import os
import subprocess
import sys

import pytest

from numtrans.models.gpt import GPT, GPTConfig


@pytest.fixture
def model_dir(tmp_path):
    GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8)).save_pretrained(
        tmp_path
    )
    return tmp_path


@pytest.mark.parametrize("cut", [1000, -100])
def test_truncated_weights_name_the_file(model_dir, cut):
    path = model_dir / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(ValueError, match="model.safetensors: cannot read the weights"):
        GPT.from_pretrained(str(model_dir))


def test_truncated_weights_from_the_command_line(model_dir):
    path = model_dir / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    (model_dir / "tokenizer.json").write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "numtrans.cli", "generate", "--model", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        cwd=str(model_dir),  # not the repository root (its source tree would shadow the install)
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "model.safetensors" in lines[0] and "damaged or truncated" in lines[0]


@pytest.mark.parametrize(
    "text, words", [("{", "not valid JSON"), ("[1]", "expected a JSON object")]
)
def test_bad_config_json_names_the_file(model_dir, text, words):
    (model_dir / "config.json").write_text(text)
    with pytest.raises(ValueError, match=f"config.json: {words}"):
        GPT.from_pretrained(str(model_dir))
