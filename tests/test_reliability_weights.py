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


# ---- item 10: the config is checked against the weight file's header before allocating -------
def _edit_config(directory, **changes):
    import json

    path = directory / "config.json"
    values = json.loads(path.read_text())
    values.update(changes)
    path.write_text(json.dumps(values))


@pytest.mark.parametrize(
    "changes, named",
    [
        ({"vocab_size": 100_000_000}, "vocab_size=100000000 but 'transformer.wte.weight' has 7"),
        ({"n_embd": 16}, "n_embd=16"),
        ({"block_size": 4096}, "block_size=4096"),
        ({"n_layer": 40}, "n_layer=40 but the file has 1"),
    ],
)
def test_crafted_config_is_refused_before_allocating(model_dir, changes, named, monkeypatch):
    import numtrans.models.gpt as gpt_module

    _edit_config(model_dir, **changes)
    built = []
    monkeypatch.setattr(gpt_module.GPT, "__init__", lambda self, cfg: built.append(cfg))
    with pytest.raises(ValueError, match="the config does not match the weights") as info:
        GPT.from_pretrained(str(model_dir))
    assert named in str(info.value) and "\n" not in str(info.value)
    assert built == []  # refused from the header alone: no model was built


def test_header_check_covers_bert_and_seq2seq(tmp_path):
    from numtrans.models import BertConfig, BertModel, Seq2SeqConfig, Seq2SeqTransformer

    bert = BertModel(BertConfig(vocab_size=11, hidden_size=8, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=16,
                                max_position_embeddings=16))  # fmt: skip
    bert.save_pretrained(tmp_path / "bert")
    _edit_config(tmp_path / "bert", intermediate_size=17, num_hidden_layers=3)
    with pytest.raises(ValueError, match="intermediate_size=17 .*num_hidden_layers=3"):
        BertModel.from_pretrained(str(tmp_path / "bert"))
    s2s = Seq2SeqTransformer(Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=10, d_model=8, nhead=2,
                                           num_encoder_layers=1, num_decoder_layers=2,
                                           dim_feedforward=16, max_len=32))  # fmt: skip
    s2s.save_pretrained(tmp_path / "s2s")
    assert Seq2SeqTransformer.from_pretrained(str(tmp_path / "s2s")).config.num_decoder_layers == 2
    _edit_config(tmp_path / "s2s", tgt_vocab_size=10_000_000, num_decoder_layers=1)
    with pytest.raises(ValueError, match="tgt_vocab_size=10000000 .*num_decoder_layers=1"):
        Seq2SeqTransformer.from_pretrained(str(tmp_path / "s2s"))
