"""The explorer's views inline in Jupyter: interactive HTML with the model's numbers embedded.

    attention_view(model, tokenizer, text)     head view + model view (GPT or BERT)
    model_view(model, tokenizer, text)         every layer x head as small heatmaps; click one
    next_token_view(model, tokenizer, text)    next-token bars with temperature/top-k/top-p
    translation_view(translator, text)         a translator's beams and cross-attention

Each returns an ``HTMLView``: Jupyter shows its ``_repr_html_`` inline; ``save(path)`` writes a
page that works offline. The HTML is self-contained (no CDN, no server): the drawing code is
the explorer's own ``numtrans/serve/explorer.js``, the data sits in a
``<script type="application/json">`` block, so what is drawn can be read back exactly.
The numbers come from the same ``Probe`` the server uses, under ``no_grad``.
"""

from __future__ import annotations

import contextlib
import json
import uuid

import numpy as np

from .io import atomic_write_text
from .serve.assets import script_js, style_css
from .serve.probe import Probe
from .serve.seq2seq import TranslatorProbe


class HTMLView:
    """Self-contained interactive HTML (the explorer's JS, data embedded); Jupyter shows
    ``_repr_html_`` inline, ``save(path)`` writes a page that works offline."""

    def __init__(self, html: str, data: dict):
        self.html, self.data = html, data

    def _repr_html_(self) -> str:
        return self.html

    def save(self, path) -> None:
        """A full HTML document (with its charset, so non-ASCII pieces show right)."""
        atomic_write_text(path, page(self.html))


def page(fragment: str) -> str:
    return f"<!doctype html><html><head><meta charset='utf-8'></head><body>{fragment}</body></html>"


def _render(function: str, data: dict) -> HTMLView:
    """HTML that calls ``window.numtransExplorer.<function>(root, data)``."""
    div = f"nt-{uuid.uuid4().hex[:12]}"
    # "</" inside the JSON would end the <script> element early (a token may be "</s>")
    blob = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    html = (
        f"<style>{style_css()}</style><div class='nt-explorer' id='{div}'></div>"
        f"<script type='application/json' id='{div}-data' class='nt-data'>{blob}</script>"
        f"<script>{script_js()}\n(function () {{ var root = document.getElementById('{div}');"
        f" var data = JSON.parse(document.getElementById('{div}-data').textContent);"
        f" window.numtransExplorer.{function}(root, data); }})();</script>"
    )
    return HTMLView(html, data)


@contextlib.contextmanager
def evaluating(model):
    """Dropout off while the view is computed, the model's own mode back afterwards (a
    notebook may be in the middle of training it)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _probe(model, tokenizer):
    return Probe.from_model(model, tokenizer)


def _attention_data(model, tokenizer, text: str) -> dict:
    probe = _probe(model, tokenizer)
    ids, truncated = probe.encode(text)
    with evaluating(model):
        w = probe.attention(ids).astype(np.float64).round(6)
    return {"tokens": probe.tokens(ids), "truncated": truncated, "weights": w.tolist()}


def attention_view(model, tokenizer, text: str) -> HTMLView:
    """Head view + model view of ``model``'s attention on ``text`` (a GPT or a BERT), the same
    drawing code as ``numtrans serve``; every line carries ``data-weight`` (L, H, T, T)."""
    return _render("attentionPanel", _attention_data(model, tokenizer, text))


def model_view(model, tokenizer, text: str) -> HTMLView:
    """All layers x heads of attention on ``text`` as a grid of small (T, T) heatmaps
    (BertViz's "model view"); clicking one enlarges it. Cells carry ``data-weight``."""
    return _render("attentionPanel", {**_attention_data(model, tokenizer, text), "headView": False})


def next_token_view(model, tokenizer, text: str, k: int = 10) -> HTMLView:
    """The next-token distribution after ``text`` (a GPT), as bars of the ``k`` likeliest
    tokens, with temperature / top-k / top-p sliders that redraw it in the browser:

        p = softmax(top_p(top_k(logits / temperature)))     (``sample_next``'s distribution)

    All V logits are embedded (the temperature changes every token's share)."""
    if not 1 <= k <= 100:
        raise ValueError(f"k must lie in [1, 100], got {k}")
    probe = _probe(model, tokenizer)
    ids, truncated = probe.encode(text)
    with evaluating(model):
        logits = probe.next_logits(ids).round(6)
    likeliest = np.argsort(-logits, kind="stable")[: max(k, 50)]
    data = {
        "tokens": probe.tokens(ids),
        "truncated": truncated,
        "k": k,
        "logits": logits.tolist(),
        "pieces": {int(i): tokenizer.id_to_token(int(i)) for i in likeliest},
    }
    return _render("nextPanel", data)


def translation_view(translator, text: str, stack: str = "cross", **search) -> HTMLView:
    """A ``Translator``'s beam hypotheses for ``text`` and the attention (``stack``: "cross",
    "encoder" or "decoder") of its best one; ``search``: ``Translator.search`` options."""
    probe = TranslatorProbe.from_translator(translator)
    beam = search.pop("beam_size", None) or translator.settings["beam_size"]
    src = translator.encode_source(text)
    with evaluating(translator.model):
        hyps = probe.search(text, beam_size=beam, n_best=search.pop("n_best", beam), **search)
        view = probe.stack_view(src, hyps[0].tokens, stack)
    data = {
        "tokens": probe.tokens(src),
        "stack": stack,
        "query_tokens": view["query_tokens"],
        "key_tokens": view["key_tokens"],
        "weights": view["weights"].astype(np.float64).round(6).tolist(),
        "hypotheses": probe.hypotheses(hyps),
    }
    return _render("translationPanel", data)
