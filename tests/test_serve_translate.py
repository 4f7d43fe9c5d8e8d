"""The explorer on a translation model: /api/translate (beam hypotheses and scores) and the
three attention stacks (cross, encoder, decoder), over HTTP against a real uvicorn server."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

import numtrans as nt  # noqa: E402
from numtrans.serve import TranslatorProbe, seq2seq_attention  # noqa: E402
from numtrans.serve.app import create_app  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from serve_helpers import Server, save_tiny_gpt, save_tiny_translator  # noqa: E402

TEXT = "i love you."


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("translator")
    return save_tiny_translator(root / "tr"), save_tiny_gpt(root / "gpt")


@pytest.fixture(scope="module")
def probe(dirs):
    return TranslatorProbe(dirs[0], "tr")


@pytest.fixture(scope="module")
def client(dirs):
    with Server(create_app(list(dirs), max_body=4096)) as server:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            yield c


def post(client, path, **body):
    return client.post(path, json={"model": "tr", **body})


def test_recorded_attention_is_the_models(probe):
    tr = probe.translator
    src, tgt = tr.encode_source(TEXT), [tr.bos_id, 5, 7, 9]
    out = seq2seq_attention(probe.model, np.array(src), np.array(tgt))
    with nt.no_grad():
        ref, _ = probe.model(np.array([src]), np.array([tgt]))
    np.testing.assert_allclose(out["logits"], ref.data[0], rtol=1e-5, atol=1e-5)
    S, T, H = len(src), len(tgt), probe.n_head
    assert out["encoder"].shape == (2, H, S, S) and out["decoder"].shape == (2, H, T, T)
    cross = probe.model.cross_attention_weights(np.array([src]), np.array([tgt]))[:, 0]
    np.testing.assert_allclose(out["cross"], cross, atol=1e-6)
    for w in out.values():
        if w.ndim == 4:
            np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(out["decoder"], 1) == 0)  # causal decoder self-attention


def test_models_lists_the_translator(client):
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert set(models) == {"tr", "gpt"}
    tr = models["tr"]
    assert tr["family"] == "seq2seq" and "translate" in tr["views"] and "next" not in tr["views"]
    assert (tr["n_layer"], tr["n_encoder_layer"], tr["beam_size"]) == (2, 2, 3)


def test_translate_returns_the_translators_beams(client, probe):
    tr = probe.translator
    j = post(client, "/api/translate", text=TEXT, beam_size=3, n_best=3).json()
    ref = tr.translate_nbest([TEXT], n_best=3, beam_size=3)[0]
    assert [h["text"] for h in j["hypotheses"]] == [t for t, _ in ref]
    np.testing.assert_allclose([h["score"] for h in j["hypotheses"]], [s for _, s in ref])
    assert j["hypotheses"][0]["text"] == tr.translate([TEXT], beam_size=3)[0]
    scores = [h["score"] for h in j["hypotheses"]]
    assert scores == sorted(scores, reverse=True)
    best = tr.search([TEXT], beam_size=3)[0][0]
    assert [t["id"] for t in j["hypotheses"][0]["tokens"]] == best.tokens
    assert j["hypotheses"][0]["log_prob"] == pytest.approx(best.log_prob)
    assert [t["id"] for t in j["source_tokens"]] == tr.encode_source(TEXT)
    greedy = post(client, "/api/translate", text=TEXT, beam_size=1).json()["hypotheses"]
    assert [h["text"] for h in greedy] == tr.translate([TEXT], beam_size=1)
    short = post(client, "/api/translate", text=TEXT, beam_size=2, max_new_tokens=3).json()
    assert all(len(h["tokens"]) <= 3 for h in short["hypotheses"])


def test_cross_attention_of_the_best_beam(client, probe):
    tr = probe.translator
    j = post(client, "/api/attention", text=TEXT).json()  # default: cross, beam from settings
    amap = tr.attention(TEXT)
    assert j["stack"] == "cross" and j["translation"] == amap.translation
    np.testing.assert_allclose(j["weights"], amap.weights, atol=1e-6)
    T, S = amap.weights.shape[-2:]
    assert len(j["query_tokens"]) == T and len(j["key_tokens"]) == S
    assert [t["id"] for t in j["key_tokens"]] == tr.encode_source(TEXT)
    assert [t["id"] for t in j["query_tokens"]] == j["target_ids"] + [tr.eos_id]


def test_forced_target_and_the_other_stacks(client, probe):
    tr = probe.translator
    src, target = tr.encode_source(TEXT), [4, 6, 8]
    ref = seq2seq_attention(probe.model, np.array(src), np.array([tr.bos_id] + target))
    one = post(client, "/api/attention", text=TEXT, target_ids=target, layer=1, head=0).json()
    np.testing.assert_allclose(one["weights"], ref["cross"][1, 0], atol=1e-6)
    enc = post(client, "/api/attention", text=TEXT, target_ids=target, stack="encoder").json()
    np.testing.assert_allclose(enc["weights"], ref["encoder"], atol=1e-6)
    assert enc["query_tokens"] == enc["key_tokens"] == enc["tokens"]
    dec = post(client, "/api/attention", text=TEXT, target_ids=target, stack="decoder").json()
    np.testing.assert_allclose(dec["weights"], ref["decoder"], atol=1e-6)
    assert [t["id"] for t in dec["key_tokens"]] == [tr.bos_id] + target


def test_tokenize_and_truncation(client, probe):
    j = post(client, "/api/tokenize", text=TEXT).json()
    assert [t["id"] for t in j["tokens"]] == probe.translator.encode_source(TEXT)
    assert j["tokens"][-1] == {"id": 3, "piece": "<eos>", "special": True}
    long = post(client, "/api/tokenize", text="i love you. " * 4).json()  # 48 > max_length 32
    assert long["truncated"] is True and len(long["tokens"]) == 32


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/api/translate", {"text": ""}, "text is empty"),
        ("/api/translate", {"text": TEXT, "beam_size": 0}, "'beam_size' must lie"),
        ("/api/translate", {"text": TEXT, "beam_size": 17}, "'beam_size' must lie"),
        ("/api/translate", {"text": TEXT, "beam_size": 2, "n_best": 3}, "'n_best' must lie"),
        ("/api/translate", {"text": TEXT, "alpha": "x"}, "'alpha' must be a number"),
        ("/api/translate", {"text": TEXT, "max_new_tokens": 0}, "'max_new_tokens' must lie"),
        ("/api/attention", {"text": TEXT, "stack": "both"}, "'stack' must be one of"),
        ("/api/attention", {"text": TEXT, "layer": 2}, "'layer' must lie in [0, 1]"),
        ("/api/attention", {"text": TEXT, "head": 2}, "'head' must lie"),
        ("/api/attention", {"text": TEXT, "target_ids": "abc"}, "list of integer token ids"),
        ("/api/attention", {"text": TEXT, "target_ids": [1, 99]}, "outside [0, 18)"),
        ("/api/attention", {"text": TEXT, "target_ids": [4] * 70}, "more than 63"),
        ("/api/next", {"text": TEXT}, "no 'next' view"),
        ("/api/generate", {"text": TEXT}, "no 'generate' view"),
        ("/api/classify", {"text": TEXT}, "no 'classify' view"),
        ("/api/fill-mask", {"text": TEXT}, "no 'fill-mask' view"),
    ],
)
def test_bad_translator_input_is_a_400_naming_it(client, path, body, message):
    r = post(client, path, **body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert post(client, "/api/tokenize", text=TEXT).status_code == 200  # still serving


def test_concurrent_translations_equal_sequential(client):
    from concurrent.futures import ThreadPoolExecutor

    texts = ["i love you.", "we go home.", "the cat sat.", "a mat."]
    jobs = [("/api/translate", t) for t in texts] + [("/api/attention", t) for t in texts]
    sequential = [post(client, p, text=t).json() for p, t in jobs]

    def one(job):
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            return post(c, job[0], text=job[1]).json()

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(one, jobs * 2)) == sequential * 2
