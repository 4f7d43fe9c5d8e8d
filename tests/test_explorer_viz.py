"""numtrans.viz.attention_view: the explorer's attention views inline (Jupyter's _repr_html_)."""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np

from numtrans.serve import Probe
from numtrans.viz import attention_view

sys.path.insert(0, os.path.dirname(__file__))
from serve_helpers import save_tiny_gpt  # noqa: E402


def test_attention_view_embeds_the_model_weights(tmp_path):
    probe = Probe(save_tiny_gpt(tmp_path / "gpt"))
    view = attention_view(probe.model, probe.tokenizer, "to be")
    html = view._repr_html_()
    data = json.loads(re.search(r"attentionPanel\([^,]+, (\{.*\})\);</script>", html).group(1))
    ids = probe.tokenizer.encode("to be")
    assert [t["id"] for t in data["tokens"]] == ids
    np.testing.assert_allclose(data["weights"], probe.attention(ids), atol=1e-6)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # no CDN
    view.save(tmp_path / "view.html")
    assert (tmp_path / "view.html").read_text(encoding="utf-8") == html
