"""The explorer's classifier view (/api/classify) over HTTP: class names and probabilities of a
fine-tuned BERT, the value of a GPT regression head."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

import numtrans as nt  # noqa: E402
from numtrans.models.gpt_heads import GPTForSequenceClassification  # noqa: E402
from numtrans.serve import Probe  # noqa: E402
from numtrans.serve.app import create_app  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from serve_helpers import Server, save_tiny_bert, save_tiny_gpt  # noqa: E402


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    bert = save_tiny_bert(root / "sentiment", head="classify")
    gpt = save_tiny_gpt(root / "gpt")
    reg = GPTForSequenceClassification.from_gpt(gpt, num_labels=1, problem_type="regression")
    reg.save_pretrained(str(root / "score"))
    os.link(os.path.join(gpt, "tokenizer.json"), root / "score" / "tokenizer.json")
    return bert, str(root / "score")


@pytest.fixture(scope="module")
def client(dirs):
    with Server(create_app(list(dirs))) as server:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            yield c


def test_classifier_probabilities_and_names(client, dirs):
    probe = Probe(dirs[0])
    ids, _ = probe.encode("the cat sat.")
    with nt.no_grad():
        logits = probe.model(np.array([ids])).logits.data[0].astype(np.float64)
    j = client.post("/api/classify", json={"model": "sentiment", "text": "the cat sat."}).json()
    assert j["labels"] == ["neg", "neutral", "pos"]
    np.testing.assert_allclose(j["probs"], np.exp(logits) / np.exp(logits).sum(), rtol=1e-6)


def test_regression_head_gives_its_value(client, dirs):
    probe = Probe(dirs[1])
    ids = probe.tokenizer.encode("to be")
    with nt.no_grad():
        value = probe.model(np.array([ids])).logits.data[0, 0]
    j = client.post("/api/classify", json={"model": "score", "text": "to be"}).json()
    assert "probs" not in j and j["value"] == pytest.approx(float(value), rel=1e-6)
    models = {m["name"]: m["views"] for m in client.get("/api/models").json()["models"]}
    assert "classify" in models["score"] and "next" not in models["score"]
