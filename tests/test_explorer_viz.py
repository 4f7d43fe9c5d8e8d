"""numtrans.viz's notebook views (Jupyter's _repr_html_): the embedded numbers are the model's,
the HTML is self-contained, and (with chromium) it renders without console errors, drawing
exactly the embedded numbers."""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import pytest

from numtrans.serve import Probe, TranslatorProbe, next_token_distribution, seq2seq_attention
from numtrans.viz import attention_view, model_view, next_token_view, translation_view

sys.path.insert(0, os.path.dirname(__file__))
from serve_helpers import (  # noqa: E402
    launch_chromium,
    save_tiny_bert_mlm,
    save_tiny_gpt,
    save_tiny_translator,
    watch_errors,
)

TEXT = "to be or not"


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    return Probe(save_tiny_gpt(tmp_path_factory.mktemp("viz") / "gpt"))


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    return TranslatorProbe(save_tiny_translator(tmp_path_factory.mktemp("viz") / "tr"), "tr")


def embedded(view) -> dict:
    """The JSON the view's script draws from, parsed back out of the HTML."""
    html = view._repr_html_()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # no CDN
    assert "<script src" not in html and "<link" not in html
    blob = re.search(r"<script type='application/json'[^>]*>(.*?)</script>", html, re.S).group(1)
    return json.loads(blob)


def test_attention_view_embeds_the_model_weights(gpt, tmp_path):
    view = attention_view(gpt.model, gpt.tokenizer, TEXT)
    data = embedded(view)
    ids = gpt.tokenizer.encode(TEXT)
    assert [t["id"] for t in data["tokens"]] == ids
    np.testing.assert_allclose(data["weights"], gpt.attention(ids), atol=1e-6)
    assert data == view.data
    view.save(tmp_path / "view.html")
    assert view.html in (tmp_path / "view.html").read_text(encoding="utf-8")


def test_model_view_on_a_bert(tmp_path):
    bert = Probe(save_tiny_bert_mlm(tmp_path / "bert"))
    data = embedded(model_view(bert.model, bert.tokenizer, "the cat sat"))
    ids, _ = bert.encode("the cat sat")
    assert data["headView"] is False and [t["id"] for t in data["tokens"]] == ids
    np.testing.assert_allclose(data["weights"], bert.attention(ids), atol=1e-6)


def test_next_token_view_embeds_the_logits(gpt):
    data = embedded(next_token_view(gpt.model, gpt.tokenizer, TEXT, k=5))
    logits = gpt.next_logits(gpt.tokenizer.encode(TEXT))
    np.testing.assert_allclose(data["logits"], logits, atol=1e-6)
    top = np.argsort(-logits)[:5]
    assert set(top) <= {int(i) for i in data["pieces"]}
    with pytest.raises(ValueError, match="k must lie"):
        next_token_view(gpt.model, gpt.tokenizer, TEXT, k=0)


def test_translation_view_embeds_beams_and_cross_attention(translator):
    tr = translator.translator
    data = embedded(translation_view(tr, "i love you.", beam_size=3))
    ref = tr.translate_nbest(["i love you."], n_best=3, beam_size=3)[0]
    assert [h["text"] for h in data["hypotheses"]] == [t for t, _ in ref]
    best = data["hypotheses"][0]["tokens"]
    src = tr.encode_source("i love you.")
    w = seq2seq_attention(tr.model, np.array(src), np.array([tr.bos_id] + [t["id"] for t in best]))
    np.testing.assert_allclose(data["weights"], w["cross"], atol=1e-6)
    with pytest.raises(ValueError, match="stack must be one of"):
        translation_view(tr, "i love you.", stack="both")


# ----------------------------------------------------------------------------- in chromium
@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()


def open_view(browser, view, path):
    view.save(path)
    page = browser.new_page()
    errors = watch_errors(page)
    page.goto(path.as_uri())
    return page, errors


def drawn(page, selector, shape):
    cells = page.eval_on_selector_all(
        selector, "e => e.map(x => [+x.dataset.from, +x.dataset.to, +x.dataset.weight])"
    )
    out = np.full(shape, np.nan)
    for q, k, w in cells:
        out[q, k] = w
    return out


def test_views_render_in_chromium(browser, gpt, translator, tmp_path):
    ids = gpt.tokenizer.encode(TEXT)
    w = gpt.attention(ids)
    page, errors = open_view(
        browser, attention_view(gpt.model, gpt.tokenizer, TEXT), tmp_path / "a.html"
    )
    page.select_option(".nt-layer", "1")
    page.select_option(".nt-head", "1")
    np.testing.assert_allclose(drawn(page, ".nt-headview line", w.shape[2:]), w[1, 1], atol=1e-6)
    page.click(".nt-mini[data-layer='0'][data-head='1']")
    np.testing.assert_allclose(drawn(page, ".nt-enlarged rect", w.shape[2:]), w[0, 1], atol=1e-6)
    assert errors == []

    page, errors = open_view(
        browser, model_view(gpt.model, gpt.tokenizer, TEXT), tmp_path / "m.html"
    )
    assert page.locator(".nt-mini").count() == gpt.n_layer * gpt.n_head
    assert page.locator(".nt-headview").count() == 0
    assert errors == []

    logits = gpt.next_logits(ids)
    view = next_token_view(gpt.model, gpt.tokenizer, TEXT, k=5)
    page, errors = open_view(browser, view, tmp_path / "n.html")
    for t, k, p in [(1.0, 0, 1.0), (0.5, 3, 1.0), (1.5, 0, 0.6), (0.0, 0, 1.0)]:
        for cls, value in ((".nt-temperature", t), (".nt-top-k", k), (".nt-top-p", p)):
            page.fill(cls, str(value))
            page.dispatch_event(cls, "input")
        bars = page.eval_on_selector_all(
            ".nt-bar", "e => e.map(x => [+x.dataset.id, +x.dataset.prob])"
        )
        ref = next_token_distribution(
            np.array(view.data["logits"]), t, k or None, p if p < 1 else None
        )
        assert [i for i, _ in bars] == list(np.lexsort((-logits, -ref))[:5])
        np.testing.assert_allclose([q for _, q in bars], ref[[i for i, _ in bars]], atol=1e-9)
    assert errors == []

    view = translation_view(translator.translator, "i love you.")
    page, errors = open_view(browser, view, tmp_path / "t.html")
    texts = page.eval_on_selector_all(".nt-hyp", "e => e.map(x => x.dataset.text)")
    assert texts == [h["text"] for h in view.data["hypotheses"]]
    w = np.array(view.data["weights"])
    np.testing.assert_allclose(drawn(page, ".nt-headview line", w.shape[2:]), w[0, 0], atol=1e-6)
    page.screenshot(path=str(tmp_path / "translation_view.png"), full_page=True)
    assert errors == []


def test_views_show_inline_in_a_jupyter_kernel(tmp_path):
    """A real kernel (nbclient) displays the view as text/html with the model's numbers."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    gpt_dir = save_tiny_gpt(tmp_path / "gpt")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from numtrans.serve import Probe\nfrom numtrans.viz import next_token_view\n"
            f"probe = Probe({gpt_dir!r})\n"
            f"next_token_view(probe.model, probe.tokenizer, {TEXT!r}, k=3)"
        )
    ]
    # run outside the checkout (the kernel's cwd), and read the HTML output among any others (a
    # warning on stderr, say)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    (output,) = [o for o in nb.cells[0].outputs if "text/html" in o.get("data", {})]
    html = output["data"]["text/html"]
    assert "window.numtransExplorer.nextPanel(root, data)" in html

    class Shown:
        def _repr_html_(self):
            return html

    probe = Probe(gpt_dir)
    logits = probe.next_logits(probe.tokenizer.encode(TEXT))
    np.testing.assert_allclose(embedded(Shown())["logits"], logits, atol=1e-6)


def test_views_switch_dropout_off_and_restore_the_mode():
    from numtrans.models.gpt import GPT, GPTConfig
    from numtrans.tokenizers import CharTokenizer

    tok = CharTokenizer.from_text(TEXT)
    model = GPT(GPTConfig(block_size=16, vocab_size=tok.vocab_size, n_layer=2, n_head=2,
                          n_embd=16, dropout=0.5))  # fmt: skip
    model.train()
    views = [f(model, tok, TEXT) for f in (attention_view, next_token_view)]
    assert model.training and all(m.training for m in model.modules())
    probe = Probe.from_model(model.eval(), tok)
    ids = tok.encode(TEXT)
    np.testing.assert_allclose(views[0].data["weights"], probe.attention(ids), atol=1e-6)
    np.testing.assert_allclose(views[1].data["logits"], probe.next_logits(ids), atol=1e-6)


def test_notebook_views_need_no_web_stack(tmp_path):
    """The views inline the page's script and style: a notebook with ``numtrans[plot]`` only (no
    Starlette) renders them (tutorials 06/08/09 use them)."""
    import subprocess

    code = (
        "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
        "from numtrans.models import GPT, GPTConfig\n"
        "from numtrans.tokenizers import CharTokenizer\n"
        "from numtrans.viz import attention_view\n"
        "tok = CharTokenizer.from_text('hello world')\n"
        "m = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=8))\n"
        "html = attention_view(m, tok, 'hello')._repr_html_()\n"
        "assert 'nt-explorer' in html and 'starlette' not in sys.modules or sys.modules['starlette'] is None\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
