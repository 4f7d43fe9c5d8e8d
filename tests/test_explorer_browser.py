"""The explorer page in a real headless Chromium (Playwright), as a person would use it."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from numtrans.generation.generate import generate  # noqa: E402
from numtrans.serve import Probe, TranslatorProbe, seq2seq_attention  # noqa: E402
from numtrans.serve.app import create_app  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from serve_helpers import (  # noqa: E402
    Server,
    launch_chromium,
    save_tiny_bert,
    save_tiny_bert_mlm,
    save_tiny_gpt,
    save_tiny_translator,
    watch_errors,
)

DOCS_SHOT = os.path.join(os.path.dirname(__file__), "..", "docs", "explorer.png")


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    dirs = [save_tiny_gpt(root / "gpt"), save_tiny_translator(root / "tr")]
    dirs += [save_tiny_bert_mlm(root / "mlm"), save_tiny_bert(root / "sentiment", "classify")]
    with Server(create_app(dirs)) as server, sync_api.sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        errors = watch_errors(page)
        page.goto(server.url + "/")
        page.wait_for_selector("#app[data-loaded]")
        yield page, dirs, errors
        browser.close()


def run_text(page, text, model):
    page.select_option("#model", model)
    page.fill("#text", text)
    page.click("#run")
    page.wait_for_selector("#app[data-ready]")


def drawn_lines(page, shape):
    lines = page.eval_on_selector_all(
        ".nt-headview line", "e => e.map(x => [+x.dataset.from, +x.dataset.to, +x.dataset.weight])"
    )
    out = np.full(shape, np.nan)
    for q, k, w in lines:
        out[q, k] = w
    return out


def test_tokens_attention_generation_in_the_browser(session, tmp_path):
    page, dirs, errors = session
    probe = Probe(dirs[0])
    text = "to be or not"
    run_text(page, text, "gpt")
    ids = [
        int(x)
        for x in page.eval_on_selector_all("#tokens .nt-token", "e => e.map(x => x.dataset.id)")
    ]
    assert ids == probe.tokenizer.encode(text)

    page.select_option(".nt-layer", "1")
    page.select_option(".nt-head", "1")
    np.testing.assert_allclose(
        drawn_lines(page, (len(ids), len(ids))), probe.attention(ids)[1, 1], atol=1e-6
    )
    page.hover(".nt-query[data-index='3']")  # focus: only token 3's lines stay visible
    visible = page.eval_on_selector_all(
        ".nt-headview line",
        "e => e.filter(x => +x.getAttribute('stroke-opacity') > 0).map(x => +x.dataset.from)",
    )
    assert set(visible) == {3}
    page.click(".nt-mini[data-layer='0'][data-head='1']")  # model view: click enlarges
    assert page.input_value(".nt-layer") == "0" and page.input_value(".nt-head") == "1"
    assert page.locator(".nt-mini").count() == probe.n_layer * probe.n_head

    page.fill("#temperature", "0")
    page.dispatch_event("#temperature", "input")
    for _ in range(2):  # two clicks of one step: each request prefills its own cache
        page.click("#step")
        page.wait_for_selector("#app[data-ready]")
    kv = page.eval_on_selector_all(".nt-kv", "e => e.map(x => x.textContent)")
    assert kv == [kv[0]] and "(prefill)" in kv[0] and f"over {len(ids) + 1} cached" in kv[0]
    page.fill("#nsteps", "2")  # one click of two steps: the second one reuses the cache
    page.click("#step")
    page.wait_for_selector("#app[data-ready]")
    lengths = page.eval_on_selector_all(".nt-kv", "e => e.map(x => +x.dataset.kvLength)")
    assert lengths == [len(ids) + 2, len(ids) + 3]
    assert "(cached)" in page.eval_on_selector_all(".nt-kv", "e => e[1].textContent")
    got = [
        int(x) for x in page.eval_on_selector_all(".nt-gen-token", "e => e.map(x => x.dataset.id)")
    ]
    ref = generate(probe.model, np.array([ids]), 4, temperature=0)[0, len(ids) :].tolist()
    assert got == ref
    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    if os.environ.get("NUMTRANS_UPDATE_SCREENSHOT") == "1":  # refresh the README's picture
        page.screenshot(path=DOCS_SHOT, full_page=True)
    assert errors == []


def test_translator_beams_and_cross_attention_in_the_browser(session, tmp_path):
    page, dirs, errors = session
    probe = TranslatorProbe(dirs[1], "tr")
    tr, text = probe.translator, "we go home."
    run_text(page, text, "tr")
    beam = int(page.input_value("#beam"))
    assert beam == tr.settings["beam_size"]
    hyps = page.eval_on_selector_all(
        ".nt-hyp", "e => e.map(x => [x.dataset.text, +x.dataset.score, x.dataset.ids])"
    )
    ref = tr.translate_nbest([text], n_best=beam, beam_size=beam)[0]
    assert [h[0] for h in hyps] == [t for t, _ in ref]
    np.testing.assert_allclose([h[1] for h in hyps], [s for _, s in ref], rtol=1e-12)
    assert hyps[0][0] == tr.translate([text], beam_size=beam)[0]

    best = [int(i) for i in hyps[0][2].split()]
    src, tgt = tr.encode_source(text), [tr.bos_id] + best
    cross = tr.model.cross_attention_weights(np.array([src]), np.array([tgt]))[:, 0]
    page.select_option(".nt-layer", "1")
    page.select_option(".nt-head", "1")
    np.testing.assert_allclose(drawn_lines(page, cross.shape[2:]), cross[1, 1], atol=1e-6)
    queries = page.eval_on_selector_all(".nt-query", "e => e.map(x => x.textContent)")
    assert queries == [tr.tgt_tok.id_to_token(i) for i in best + [tr.eos_id]]
    keys = page.eval_on_selector_all(".nt-key", "e => e.map(x => x.textContent)")
    assert keys == [tr.src_tok.id_to_token(i).replace(" ", "\u2423") for i in src]
    page.screenshot(path=str(tmp_path / "translator.png"), full_page=True)
    assert (tmp_path / "translator.png").stat().st_size > 0

    page.select_option("#stack", "encoder")
    page.wait_for_selector("#app[data-ready]")
    enc = seq2seq_attention(tr.model, np.array(src), np.array(tgt))["encoder"]
    np.testing.assert_allclose(drawn_lines(page, enc.shape[2:]), enc[0, 0], atol=1e-6)
    assert errors == []


def test_fill_mask_in_the_browser(session):
    page, dirs, errors = session
    probe = Probe(dirs[2])
    text = "the [MASK] sat."
    run_text(page, text, "mlm")
    ids, _ = probe.encode(text)
    masks = page.eval_on_selector_all(".nt-mask", "e => e.map(x => +x.dataset.index)")
    assert masks == [2]
    top = page.eval_on_selector_all(".nt-mask .nt-bar", "e => e.map(x => +x.dataset.id)")
    assert top == [t["id"] for t in probe.fill_mask(ids, 5)[0]["top"]]
    assert page.is_hidden("#next-box") and page.is_hidden("#translate-box")
    assert errors == []


def test_classes_in_the_browser(session):
    page, dirs, errors = session
    text = "we go home."
    run_text(page, text, "sentiment")
    answer = Probe(dirs[3]).classify(Probe(dirs[3]).encode(text)[0])
    bars = page.eval_on_selector_all(
        "#classes .nt-bar", "e => e.map(x => [x.textContent.split('%')[0], +x.dataset.prob])"
    )
    assert [b[1] for b in bars] == pytest.approx(answer["probs"], rel=1e-9)
    assert [b[0].startswith(name) for b, name in zip(bars, answer["labels"])] == [True] * 3
    assert page.is_hidden("#fill-box") and page.is_visible("#classify-box")
    assert errors == []
