"""The explorer's masked-LM view (/api/fill-mask) and model names (``serve --name``), over HTTP."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

import numtrans as nt  # noqa: E402
from numtrans.cli import main  # noqa: E402
from numtrans.serve import load_probe  # noqa: E402
from numtrans.serve.app import create_app  # noqa: E402
from numtrans.serve.probe import unique_names  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from serve_helpers import Server, save_tiny_bert_mlm, save_tiny_gpt  # noqa: E402

TEXT = "the [MASK] sat on a [MASK]."


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlm")
    return (
        save_tiny_bert_mlm(root / "a" / "model"),
        save_tiny_bert_mlm(root / "b" / "model", hf=True, seed=1),
        save_tiny_gpt(root / "gpt"),
    )


@pytest.fixture(scope="module")
def client(dirs):
    app = create_app(list(dirs), names=["mlm", "hf-mlm", "shakespeare"])
    with Server(app) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def expected(directory, text, k):
    """The MLM head's softmax at each [MASK], computed here from the model's own forward."""
    probe = load_probe(directory)
    ids, _ = probe.encode(text)
    with nt.no_grad():
        logits = probe.model(np.array([ids])).logits.data[0].astype(np.float64)
    mask = probe.tokenizer.token_to_id("[MASK]")
    out = []
    for t in [i for i, x in enumerate(ids) if x == mask]:
        p = np.exp(logits[t] - logits[t].max())
        p /= p.sum()
        out.append((t, np.argsort(-p, kind="stable")[:k].tolist(), np.sort(p)[::-1][:k]))
    return ids, out


@pytest.mark.parametrize("name, index", [("mlm", 0), ("hf-mlm", 1)])
def test_fill_mask_equals_the_mlm_head(client, dirs, name, index):
    ids, ref = expected(dirs[index], TEXT, 4)
    j = client.post("/api/fill-mask", json={"model": name, "text": TEXT, "k": 4}).json()
    assert [t["id"] for t in j["tokens"]] == ids
    assert [t["piece"] for t in j["tokens"]][2] == "[MASK]" and j["tokens"][2]["special"]
    assert [m["index"] for m in j["masks"]] == [t for t, _, _ in ref] == [2, 6]
    for m, (_, top, probs) in zip(j["masks"], ref):
        assert [t["id"] for t in m["top"]] == top
        np.testing.assert_allclose([t["prob"] for t in m["top"]], probs, rtol=1e-5)


def test_models_are_named_by_the_user(client):
    models = client.get("/api/models").json()["models"]
    assert [m["name"] for m in models] == ["mlm", "hf-mlm", "shakespeare"]
    assert "fill-mask" in models[0]["views"] and "fill-mask" in models[1]["views"]
    assert "fill-mask" not in models[2]["views"]
    r = client.post("/api/next", json={"model": "shakespeare", "text": "to be"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "body, message",
    [
        ({"model": "mlm", "text": "the cat sat."}, "text has no [MASK] token"),
        ({"model": "mlm", "text": TEXT, "k": 0}, "'k' must lie"),
        ({"model": "shakespeare", "text": "to be"}, "no 'fill-mask' view"),
        ({"model": "model", "text": TEXT}, "unknown model 'model'"),
    ],
)
def test_bad_fill_mask_input(client, body, message):
    r = client.post("/api/fill-mask", json=body)
    assert 400 <= r.status_code < 500 and message in r.json()["error"]


def test_default_names_are_the_directories_made_unique(dirs):
    assert unique_names(list(dirs)) == ["model", "model-2", "gpt"]
    assert unique_names(list(dirs[:2]), ["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError, match="2 --name for 3 --model"):
        unique_names(list(dirs), ["a", "b"])
    with pytest.raises(ValueError, match="share a name"):
        unique_names(list(dirs[:2]), ["a", "a"])
    with pytest.raises(ValueError, match="must not be empty"):
        unique_names(list(dirs[:1]), [" "])


def test_cli_serve_refuses_mismatched_names(dirs, capsys):
    assert main(["serve", "--model", dirs[0], "--model", dirs[2], "--name", "x"]) == 2
    assert "got 1 --name for 2 --model" in capsys.readouterr().err
