"""ROUGE F-measures equal to the rouge-score package on real XSum summaries."""

import json
from pathlib import Path

import pytest

from numtrans.metrics import rouge
from numtrans.metrics.rouge import lcs_length

ROWS = json.loads((Path(__file__).parent / "fixtures/xsum_sample.json").read_text())["rows"]


def test_worked_example():
    s = rouge(["the cat was found under the bed"], ["the cat was under the bed"])
    assert s["rouge1"] == pytest.approx(2 * (6 / 7) / (6 / 7 + 1))
    assert s["rouge2"] == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4


def test_equal_to_rouge_score_on_xsum():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    types = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(types), use_stemmer=False)
    preds = [r["lead"] for r in ROWS]
    refs = [r["summary"] for r in ROWS]
    ours = rouge(preds, refs, rouge_types=types, aggregate=False)
    for o, p, r in zip(ours, preds, refs):
        theirs = scorer.score(r, p)
        for t in types:
            assert o[t] == pytest.approx(theirs[t].fmeasure, abs=1e-12)
    mean = rouge(preds, refs, rouge_types=types)
    assert 0.05 < mean["rouge1"] < 0.6 and mean["rouge2"] < mean["rouge1"]
    # Several references: the best one counts, as RougeScorer.score_multi does.
    multi = rouge(preds[:5], [[refs[i + 1], refs[i]] for i in range(5)], aggregate=False)
    for o, p, i in zip(multi, preds, range(5)):
        theirs = scorer.score_multi([refs[i + 1], refs[i]], p)
        for t in types:
            assert o[t] == pytest.approx(theirs[t].fmeasure, abs=1e-12)


def test_char_mode_chinese():
    # Word mode drops non-ASCII text entirely; char mode counts characters.
    assert rouge(["我们下周去北京"], ["下周我们去北京"])["rouge1"] == 0.0
    s = rouge(["我们下周去北京"], ["下周我们去北京"], tokenize="char")
    assert s["rouge1"] == pytest.approx(1.0)
    assert s["rougeL"] == pytest.approx(5 / 7)  # LCS 下周去北京
    assert s["rouge2"] == pytest.approx(4 / 6)  # 我们 下周 去北 北京 of 6 bigrams


def test_bad_input():
    with pytest.raises(ValueError, match="unknown rouge type"):
        rouge(["a"], ["a"], rouge_types=("rougeX",))
    with pytest.raises(ValueError, match="tokenize"):
        rouge(["a"], ["a"], tokenize="bpe")
    with pytest.raises(ValueError, match="2 predictions but 1"):
        rouge(["a", "b"], ["a"])
