"""SQuAD EM/F1 against an independent re-implementation of the official v1.1 script's logic."""

import json
import re
import string
from collections import Counter
from pathlib import Path

import pytest

from numtrans.metrics import squad_scores
from numtrans.metrics.squad import normalize_answer

ROWS = json.loads((Path(__file__).parent / "fixtures/squad_dev_sample.json").read_text())["rows"]


def _official_normalize(s):
    # Written step by step in the official order: lower, punctuation, articles, whitespace.
    def remove_articles(t):
        return re.sub(r"\b(a|an|the)\b", " ", t)

    def remove_punc(t):
        return "".join(ch for ch in t if ch not in set(string.punctuation))

    return " ".join(remove_articles(remove_punc(s.lower())).split())


def _official_f1(pred, gold):
    p, g = _official_normalize(pred).split(), _official_normalize(gold).split()
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def _official(preds, refs):
    em = f1 = 0.0
    for p, golds in zip(preds, refs):
        em += max(float(_official_normalize(p) == _official_normalize(g)) for g in golds)
        f1 += max(_official_f1(p, g) for g in golds)
    return {"exact_match": 100 * em / len(preds), "f1": 100 * f1 / len(preds)}


def test_normalisation_examples():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("Levi's Stadium.") == "levis stadium"
    assert normalize_answer("theory") == "theory"  # "the" only as a whole word


def test_equal_to_official_on_real_dev_answers():
    preds = [r["prediction"] for r in ROWS]
    refs = [r["answers"] for r in ROWS]
    ours, ref = squad_scores(preds, refs), _official(preds, refs)
    assert ours == pytest.approx(ref, abs=1e-12)
    # The sample mixes exact matches and partial spans, so neither score is trivial.
    assert 5 < ours["exact_match"] < 95 and ours["exact_match"] < ours["f1"] < 100


def test_max_over_references_matters():
    multi = [r for r in ROWS if len(set(r["answers"])) >= 2]
    assert len(multi) >= 20
    preds = [r["answers"][-1] for r in multi]  # the last reference, often not the first
    refs = [r["answers"] for r in multi]
    assert squad_scores(preds, refs) == {"exact_match": 100.0, "f1": 100.0}
    first_only = squad_scores(preds, [r[:1] for r in refs])
    assert first_only["exact_match"] < 100.0
    assert first_only == pytest.approx(_official(preds, [r[:1] for r in refs]))


def test_dict_input_and_errors():
    preds = {r["id"]: r["prediction"] for r in ROWS}
    refs = {r["id"]: r["answers"] for r in ROWS}
    assert squad_scores(preds, refs) == squad_scores(
        [r["prediction"] for r in ROWS], [r["answers"] for r in ROWS]
    )
    with pytest.raises(ValueError, match="no prediction"):
        squad_scores({}, refs)
    with pytest.raises(ValueError, match="2 predictions but 1"):
        squad_scores(["a", "b"], [["a"]])
