"""``numtrans finetune --lora``, ``evaluate --adapter`` and ``merge-adapter`` as subprocesses on
a tiny BERT: the adapter alone is written, the merged model scores as base + adapter, and bad
input (rank 0 or above the layer's size, a pattern matching nothing, another base) is one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import numtrans as nt
from numtrans.finetune import LabeledData, predict_logits
from numtrans.models import GPT, GPTConfig
from numtrans.recipes.finetune import FinetuneConfig, finetune, load_finetuned
from numtrans.recipes.mlm import MLMConfig, build_mlm
from numtrans.tokenizers import CharTokenizer, WordPieceTokenizer

GOOD, BAD = "good great fine nice".split(), "bad awful poor dull".split()
FILLER = "the film was a plot and acting it is this movie".split()


def synthetic(n: int, seed: int = 0) -> LabeledData:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, size=int(rng.integers(3, 7))))
        words.insert(int(rng.integers(len(words) + 1)), rng.choice(GOOD if label else BAD))
        texts.append(" ".join(words))
        labels.append("pos" if label else "neg")
    return LabeledData(texts, labels, list(range(1, n + 1)), "synthetic")


def make_base(path, hidden: int, data: LabeledData) -> str:
    cfg = MLMConfig(vocab_size=60, hidden_size=hidden, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=2 * hidden, max_length=16,
                    dropout=0.0)  # fmt: skip
    tokenizer = WordPieceTokenizer.train(data.texts, cfg.vocab_size)
    nt.manual_seed(0)
    build_mlm(cfg, tokenizer.vocab_size).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return str(path)


def cli(*argv):
    # cwd outside the checkout: `-m` puts cwd first on sys.path, and the source tree (no compiled
    # modules) would shadow the installed package and warn on stderr
    result = subprocess.run([sys.executable, "-m", "numtrans.cli", *map(str, argv)],
                            capture_output=True, text=True, timeout=120,
                            cwd=tempfile.gettempdir())  # fmt: skip
    return result.returncode, result.stdout, result.stderr


def metric_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if "accuracy" in line and "n=" in line)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    data = synthetic(96)
    rows = root / "rows.tsv"
    rows.write_text("".join(f"{t}\t{y}\n" for t, y in zip(data.texts, data.labels)))
    return root, rows, make_base(root / "base", 16, data), make_base(root / "other", 8, data)


def test_finetune_lora_evaluate_and_merge(setup):
    root, rows, base, _ = setup
    adapter, merged = root / "adapter", root / "merged"
    code, out, err = cli("finetune", "--model", base, "--data", rows, "--out", adapter,
                         "--lora", 4, "--lora-alpha", 8, "--epochs", 15, "--lr", 2e-2)  # fmt: skip
    assert code == 0, err
    assert "adapter saved" in out
    files = set(os.listdir(adapter))
    assert {"adapter_model.safetensors", "adapter_config.json", "labels.json"} <= files
    assert "model.safetensors" not in files and "vocab.txt" not in files  # the adapter alone
    code, scored, err = cli("evaluate", "--model", base, "--adapter", adapter, "--data", rows)
    assert code == 0, err
    assert float(metric_line(scored).split()[2]) >= 0.9  # the keyword task was learnt
    code, out, err = cli("merge-adapter", "--model", base, "--adapter", adapter, "--out", merged)
    assert code == 0, err
    assert (merged / "model.safetensors").is_file() and (merged / "vocab.txt").is_file()
    code, rescored, err = cli("evaluate", "--model", merged, "--data", rows)
    assert code == 0, err
    assert metric_line(rescored) == metric_line(scored)
    texts = rows.read_text().splitlines()[:8]
    (a, tok, _, n), (m, _, _, _) = load_finetuned(base, str(adapter)), load_finetuned(str(merged))
    np.testing.assert_allclose(predict_logits(m, tok, texts, n), predict_logits(a, tok, texts, n),
                               atol=1e-5)  # fmt: skip
    code, _, err = cli("evaluate", "--model", adapter, "--data", rows)
    assert code == 2 and "holds an adapter: pass --model BASE --adapter" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lora", 0], "setting lora_r=0 is invalid"),
        (["--lora", 17], "LoRA rank r=17 is invalid"),
        (["--lora", 2, "--lora-targets", "no_such_layer"], "match no Linear layer"),
    ],
)
def test_bad_lora_settings_are_one_line(setup, args, message):
    root, rows, base, _ = setup
    code, _, err = cli("finetune", "--model", base, "--data", rows, "--out", root / "x",
                       "--max-steps", 1, *args)  # fmt: skip
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (root / "x").exists()


def test_adapter_for_another_base_is_refused(setup):
    root, rows, base, other = setup
    adapter = root / "adapter2"
    assert cli("finetune", "--model", base, "--data", rows, "--out", adapter, "--lora", 2,
               "--max-steps", 2)[0] == 0  # fmt: skip
    for argv in (["evaluate", "--data", rows], ["merge-adapter", "--out", root / "m2"]):
        code, _, err = cli(argv[0], "--model", other, "--adapter", adapter, *argv[1:])
        assert code == 2 and "is for another base" in err and err.count("\n") == 1, err
    assert not (root / "m2").exists()


def test_gpt_lora_trains_attention_and_the_score_head(tmp_path):
    data = synthetic(48, 3)
    tok = CharTokenizer.from_text(" ".join(data.texts))
    nt.manual_seed(0)
    gpt = GPT(GPTConfig(block_size=64, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16))
    gpt.save_pretrained(str(tmp_path / "gpt"))
    tok.save(str(tmp_path / "gpt" / "tokenizer.json"))
    cfg = FinetuneConfig(epochs=1, lr=3e-3, batch_size=16, lora_r=2)
    res = finetune(str(tmp_path / "gpt"), data, cfg, out_dir=str(tmp_path / "ad"), say=print)
    trained = {n for n, p in res.model.named_parameters() if p.requires_grad}
    assert trained == {"transformer.h.0.attn.c_attn.lora_A", "transformer.h.0.attn.c_attn.lora_B",
                       "transformer.h.0.attn.c_proj.lora_A", "transformer.h.0.attn.c_proj.lora_B",
                       "score.weight"}  # fmt: skip
    model, _, labels, _ = load_finetuned(str(tmp_path / "gpt"), str(tmp_path / "ad"))
    ids = np.array([tok.encode(data.texts[0])])
    np.testing.assert_allclose(model(ids).logits.numpy(), res.model(ids).logits.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="exclude each other"):
        FinetuneConfig(lora_r=2, freeze=True)
