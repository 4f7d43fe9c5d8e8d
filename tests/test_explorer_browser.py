"""The explorer page in a real headless Chromium (Playwright), as a person would use it."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from numtrans.generation.generate import generate  # noqa: E402
from numtrans.serve import Probe  # noqa: E402
from numtrans.serve.app import create_app  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from serve_helpers import Server, save_tiny_gpt  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DOCS_SHOT = os.path.join(os.path.dirname(__file__), "..", "docs", "explorer.png")


@pytest.fixture(scope="module")
def page_and_probe(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (apt-get install chromium) for the browser test")
    gpt_dir = save_tiny_gpt(tmp_path_factory.mktemp("browser") / "gpt")
    with Server(create_app([gpt_dir])) as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_selector("#app[data-loaded]")
        yield page, Probe(gpt_dir), errors
        browser.close()


def run_text(page, text):
    page.fill("#text", text)
    page.click("#run")
    page.wait_for_selector("#app[data-ready]")


def test_tokens_attention_generation_in_the_browser(page_and_probe, tmp_path):
    page, probe, errors = page_and_probe
    text = "to be or not"
    run_text(page, text)
    ids = [
        int(x)
        for x in page.eval_on_selector_all("#tokens .nt-token", "e => e.map(x => x.dataset.id)")
    ]
    assert ids == probe.tokenizer.encode(text)

    page.select_option(".nt-layer", "1")
    page.select_option(".nt-head", "1")
    lines = page.eval_on_selector_all(
        ".nt-headview line",
        "e => e.map(x => [+x.dataset.from, +x.dataset.to, +x.dataset.weight])",
    )
    drawn = np.zeros((len(ids), len(ids)))
    for q, k, w in lines:
        drawn[q, k] = w
    np.testing.assert_allclose(drawn, probe.attention(ids)[1, 1], atol=1e-6)
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
    for _ in range(3):
        page.click("#step")
        page.wait_for_selector("#app[data-ready]")
    got = [
        int(x) for x in page.eval_on_selector_all(".nt-gen-token", "e => e.map(x => x.dataset.id)")
    ]
    ref = generate(probe.model, np.array([ids]), 3, temperature=0)[0, len(ids) :].tolist()
    assert got == ref
    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
    if os.environ.get("NUMTRANS_UPDATE_SCREENSHOT") == "1":  # refresh the README's picture
        page.screenshot(path=DOCS_SHOT, full_page=True)
    assert errors == []
