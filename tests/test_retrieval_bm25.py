"""BM25 equal to bm25s (method="lucene") on real SQuAD dev paragraphs and questions."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from numtrans.retrieval import BM25

ROWS = json.loads((Path(__file__).parent / "fixtures/squad_dev_sample.json").read_text())["rows"]


def _tok(s):
    return re.findall(r"[a-z0-9]+", s.lower())


def test_hand_formula():
    corpus = [["a", "b", "b"], ["b", "c"], ["c"]]
    bm = BM25(corpus, k1=1.2, b=0.5)
    avgdl = 2.0
    idf_b = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    expect = idf_b * 2 / (2 + 1.2 * (1 - 0.5 + 0.5 * 3 / avgdl))
    assert bm.get_scores(["b"])[0] == pytest.approx(expect)
    assert bm.get_scores(["zzz"]).tolist() == [0, 0, 0]
    assert bm.top_k(["c"], 2).tolist() == [2, 1]


def test_equal_to_bm25s_lucene():
    bm25s = pytest.importorskip("bm25s")
    # Real text: answers and predictions of the SQuAD dev sample as a small corpus.
    corpus = [_tok(r["prediction"] + " " + " ".join(r["answers"])) for r in ROWS]
    ref = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    ref.index(corpus, show_progress=False)
    ours = BM25(corpus)
    for r in ROWS[:30]:
        q = _tok(r["answers"][0])
        got = ours.get_scores(q)
        assert got.max() > 0
        np.testing.assert_allclose(got, ref.get_scores(q), rtol=1e-5, atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        BM25([])
    with pytest.raises(ValueError, match="not a string"):
        BM25([["a"]]).get_scores("a")
