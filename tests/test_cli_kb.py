"""``numtrans index`` / ``search`` / ``summarize`` end to end in a subprocess: a tiny BERT
exported as a Hugging Face directory stands in for MiniLM (so no download is needed), and bad
input ends in one ``numtrans CMD: error:`` line with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from numtrans.models import BertConfig, BertModel
from numtrans.models.hf import export_hf
from numtrans.random import manual_seed
from numtrans.tokenizers import WordPieceTokenizer

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "the", "red", "cat", "blue", "dog",
         "sat", "ran", "sky", "is", "green", "grass", "grows"]  # fmt: skip
PASSAGES = ["the red cat sat", "the blue dog ran", "the sky is blue", "green grass grows"]


def run(args, cwd, stdin=None):
    # the installed numtrans, run outside the repository (its source tree has no compiled
    # modules and would shadow the install with a warning on stderr)
    env = dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "numtrans.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _tiny_model(directory, seed=0):
    manual_seed(seed)
    cfg = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    model = BertModel(cfg)
    export_hf(model, str(directory))
    WordPieceTokenizer(WORDS).save_pretrained(str(directory))
    return str(directory)


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    base = tmp_path_factory.mktemp("kb")
    model = _tiny_model(base / "model")
    docs = base / "kb.jsonl"
    docs.write_text(
        "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(PASSAGES))
    )
    out = run(["index", "--model", model, "--docs", str(docs), "--out", "kb.safetensors"], base)
    assert out.returncode == 0, out.stderr
    assert "indexed 4 passages (16 dimensions) -> kb.safetensors" in out.stdout
    return base, model


def _rows(stdout):
    return [line.split("\t") for line in stdout.splitlines() if line.count("\t") == 2]


def test_search_finds_the_exact_passage(kb):
    base, _ = kb
    for method in ("dense", "bm25", "hybrid"):
        out = run(["search", "--index", "kb.safetensors", "the blue dog ran", "-k", "2",
                   "--method", method], base)  # fmt: skip
        assert out.returncode == 0, out.stderr
        rows = _rows(out.stdout)
        assert [r[0] for r in rows] == ["1", "2"]
        assert rows[0][2] == "the blue dog ran", (method, rows)
        assert float(rows[0][1]) >= float(rows[1][1])
    out = run(
        ["search", "--index", "kb.safetensors", "-", "-k", "1"],
        base,
        "the red cat sat\n\nthe sky is blue\n",
    )
    assert out.returncode == 0, out.stderr
    assert [r[2] for r in _rows(out.stdout)] == ["the red cat sat", "the sky is blue"]


def test_search_refuses_another_model(kb, tmp_path):
    base, _ = kb
    other = _tiny_model(tmp_path / "other", seed=1)
    out = run(
        ["search", "--index", str(base / "kb.safetensors"), "--model", other, "cat"], tmp_path
    )
    assert out.returncode == 2
    assert out.stderr.startswith("numtrans search: error: the index was built with model")
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "content, match",
    [(b"\x89PNG\r\n\x1a\n\x00\x00", "kb.bin:1: "), (b'{"text": "a"}\n{"x": 1}\n', "kb.bin:2: ")],
)
def test_index_bad_knowledge_base(kb, tmp_path, content, match):
    _, model = kb
    (tmp_path / "kb.bin").write_bytes(content)
    out = run(["index", "--model", model, "--docs", "kb.bin", "--out", "i.safetensors"], tmp_path)
    assert out.returncode == 2 and match in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "i.safetensors").exists()


def test_search_bad_index(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    out = run(["search", "--index", "x.safetensors", "q"], tmp_path)
    assert out.returncode == 2 and "not a readable safetensors index" in out.stderr
    out = run(["search", "--index", "missing.safetensors", "q"], tmp_path)
    assert out.returncode == 2 and "no index file" in out.stderr


ARTICLE = "The red cat sat.\nThe blue dog ran. The sky is blue.\nGreen grass grows."


def test_summarize_lead_and_models(kb, tmp_path):
    _, model = kb
    (tmp_path / "a.txt").write_text(ARTICLE)
    out = run(["summarize", "a.txt", "--method", "lead", "-k", "2"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "The red cat sat. The blue dog ran."
    sentences = ["The red cat sat.", "The blue dog ran.", "The sky is blue.", "Green grass grows."]
    for method in ("centroid", "textrank"):
        out = run(
            ["summarize", "-", "--method", method, "-k", "2", "--model", model], tmp_path, ARTICLE
        )
        assert out.returncode == 0, out.stderr
        summary = out.stdout.splitlines()[-1]
        kept = [s for s in sentences if s in summary]
        assert len(kept) == 2 and summary == " ".join(kept)  # two sentences, in document order


@pytest.mark.parametrize(
    "args, content, match",
    [
        (["empty.txt", "--method", "lead"], b"  \n", "nothing to summarise"),
        (["bad.txt", "--method", "lead"], b"ok \xff\xfe", "not UTF-8"),
        (["missing.txt", "--method", "lead"], None, "no such file"),
        (["a.txt", "--method", "lead", "-k", "0"], b"A b.", "-k must be >= 1"),
    ],
)
def test_summarize_bad_input(tmp_path, args, content, match):
    if content is not None:
        (tmp_path / args[0]).write_bytes(content)
    out = run(["summarize", *args], tmp_path)
    assert out.returncode == 2 and match in out.stderr, out.stderr
    assert out.stderr.startswith("numtrans summarize: error:")
    assert len(out.stderr.strip().splitlines()) == 1


def test_ask_reads_the_retrieved_passages(kb, tmp_path):
    """``ask`` = retrieve + read: the answer is a span of the passage it names, and that passage
    is among the k retrieved; a directory with no reader head is refused in one line."""
    from numtrans.qa import QuestionAnsweringReader

    base, model = kb
    QuestionAnsweringReader.from_encoder(model, max_length=32).save_pretrained(tmp_path / "r")
    # (a random head: which span wins is arbitrary, where it comes from is not)
    for method in ("bm25", "hybrid"):
        out = run(["ask", "--index", str(base / "kb.safetensors"), "--reader", str(tmp_path / "r"),
                   "--max-length", "32", "--stride", "8", "-k", "2", "--method", method, "the blue dog ran"],
                  tmp_path)  # fmt: skip
        assert out.returncode == 0, out.stderr
        answer, score, rank, passage = out.stdout.strip().splitlines()[-1].split("\t")
        float(score)
        assert rank in ("1", "2") and passage in PASSAGES
        if rank == "1":
            assert passage == "the blue dog ran"
        assert answer == "(no answer)" or answer in passage
    out = run(["ask", "--index", str(base / "kb.safetensors"), "--reader", model, "cat?"], tmp_path)
    assert out.returncode == 2 and "holds no QA reader" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
