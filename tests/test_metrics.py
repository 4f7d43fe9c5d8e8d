"""Tests for numtrans.metrics: hand-computed cases, then scikit-learn / scipy / sacrebleu oracles."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numtrans import metrics as M
from numtrans.metrics.bleu_tokenize import tokenize_13a, tokenize_char, tokenize_zh

# Example counts keep this file at ~15 s on one core; sklearn's input validation dominates.
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# y_true / y_pred for 3 classes, worked by hand:
#   class 0: tp=1 pred=1 true=1 -> P=1   R=1   F=1
#   class 1: tp=1 pred=1 true=2 -> P=1   R=1/2 F=2/3
#   class 2: tp=2 pred=3 true=2 -> P=2/3 R=1   F=4/5
Y_TRUE = [0, 1, 2, 2, 1]
Y_PRED = [0, 2, 2, 2, 1]


# ----------------------------------------------------------------------------- classification
def test_accuracy_and_confusion_matrix_by_hand():
    assert M.accuracy_score(Y_TRUE, Y_PRED) == 0.8
    assert M.accuracy_score(Y_TRUE, Y_PRED, normalize=False) == 4
    cm = M.confusion_matrix(Y_TRUE, Y_PRED)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [0, 0, 2]])
    # labels= reorders, drops class 0 and adds a class (7) that never occurs
    cm = M.confusion_matrix(Y_TRUE, Y_PRED, labels=[2, 1, 7])
    np.testing.assert_array_equal(cm, [[2, 0, 0], [1, 1, 0], [0, 0, 0]])
    cm = M.confusion_matrix(["b", "a", "a"], ["a", "a", "b"])
    np.testing.assert_array_equal(cm, [[1, 1], [1, 0]])


def test_precision_recall_f1_by_hand():
    p, r, f, s = M.precision_recall_fscore_support(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(p, [1, 1, 2 / 3])
    np.testing.assert_allclose(r, [1, 1 / 2, 1])
    np.testing.assert_allclose(f, [1, 2 / 3, 4 / 5])
    np.testing.assert_array_equal(s, [1, 2, 2])
    assert M.f1_score(Y_TRUE, Y_PRED, average="macro") == pytest.approx((1 + 2 / 3 + 4 / 5) / 3)
    assert M.f1_score(Y_TRUE, Y_PRED, average="weighted") == pytest.approx((1 + 4 / 3 + 8 / 5) / 5)
    # micro-averaged P = R = F1 = accuracy for single-label data
    for fn in (M.precision_score, M.recall_score, M.f1_score):
        assert fn(Y_TRUE, Y_PRED, average="micro") == pytest.approx(0.8)
    # binary: only the positive class counts (tp=1, fp=1, fn=2)
    yt, yp = [1, 1, 1, 0, 0], [1, 0, 0, 1, 0]
    assert M.precision_score(yt, yp) == 0.5
    assert M.recall_score(yt, yp) == pytest.approx(1 / 3)
    assert M.f1_score(yt, yp) == pytest.approx(2 * 1 / (2 * 1 + 1 + 2))
    assert M.recall_score(["n", "y", "y"], ["y", "y", "n"], pos_label="y") == 0.5


def test_zero_division_modes():
    # class 2 is never predicted (precision 0/0); class 3 is given in labels but occurs nowhere
    yt, yp = [0, 1, 2, 2], [0, 1, 1, 0]
    with pytest.warns(M.UndefinedMetricWarning, match="precision"):
        p = M.precision_score(yt, yp, labels=[0, 1, 2, 3], average=None)
    np.testing.assert_allclose(p, [0.5, 0.5, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a number given: no warning
        p1 = M.precision_score(yt, yp, labels=[0, 1, 2, 3], average=None, zero_division=1)
        pn = M.precision_score(yt, yp, labels=[0, 1, 2, 3], average="macro", zero_division=np.nan)
        f3 = M.f1_score(yt, yp, labels=[3], average=None, zero_division=1)
    np.testing.assert_allclose(p1, [0.5, 0.5, 1.0, 1.0])
    assert pn == 0.5  # the NaN classes are left out of the mean
    assert f3[0] == 1.0  # F of a class in neither array is 0/0
    # a class present but never predicted has recall 0 and F 0 (not 0/0)
    assert M.f1_score(yt, yp, labels=[2], average=None, zero_division=1)[0] == 0.0


def test_classification_report_text_and_dict():
    expected = (
        "              precision    recall  f1-score   support\n\n"
        "           0       1.00      1.00      1.00         1\n"
        "           1       1.00      0.50      0.67         2\n"
        "           2       0.67      1.00      0.80         2\n\n"
        "    accuracy                           0.80         5\n"
        "   macro avg       0.89      0.83      0.82         5\n"
        "weighted avg       0.87      0.80      0.79         5\n"
    )
    assert M.classification_report(Y_TRUE, Y_PRED) == expected
    d = M.classification_report(Y_TRUE, Y_PRED, output_dict=True, target_names=["a", "b", "c"])
    assert d["accuracy"] == 0.8
    assert d["b"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1-score": pytest.approx(2 / 3),
        "support": 2.0,
    }
    assert set(d) == {"a", "b", "c", "accuracy", "macro avg", "weighted avg"}
    # a subset of the labels: the micro average is no longer the accuracy
    d = M.classification_report(Y_TRUE, Y_PRED, labels=[0, 1], output_dict=True)
    assert "micro avg" in d and "accuracy" not in d


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: M.accuracy_score([0, 1], [0]), "differ in length"),
        (lambda: M.accuracy_score([], []), "empty"),
        (lambda: M.f1_score([0, 1], [0, 1], average="mean"), "average must be one of"),
        (lambda: M.f1_score([0, 1], [0, 1], zero_division=2), "zero_division"),
        (lambda: M.f1_score([0, 1, 2], [0, 1, 2]), "at most 2 labels"),
        (lambda: M.f1_score([0, 2], [0, 2]), "pos_label=1 is not one of"),
        (lambda: M.accuracy_score([[0, 1]], [[0, 1]]), "1-D"),
        (lambda: M.accuracy_score([0.5, 1], [0, 1]), "non-integer"),
        (lambda: M.confusion_matrix([0, 1], [0, 1], labels=[5]), "must occur in y_true"),
        (lambda: M.confusion_matrix([0, 1], [0, 1], labels=[0, 0]), "duplicates"),
        (lambda: M.classification_report([0, 1], [0, 1], target_names=["a"]), "target_names"),
    ],
)
def test_classification_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_mixed_label_types_rejected():
    with pytest.raises(TypeError, match="mix of string and number"):
        M.accuracy_score(["a", "b"], [0, 1])


@st.composite
def label_pairs(draw):
    """Random labels over k = 2..6 classes; some classes may never be predicted / present."""
    k = draw(st.integers(2, 6))
    n = draw(st.integers(1, 30))
    true_classes = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    pred_classes = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    yt = draw(st.lists(st.sampled_from(true_classes), min_size=n, max_size=n))
    yp = draw(st.lists(st.sampled_from(pred_classes), min_size=n, max_size=n))
    return k, np.array(yt), np.array(yp)


ZERO_DIVISIONS = ["warn", 0, 1, np.nan]


@FAST
@given(
    data=label_pairs(),
    average=st.sampled_from(["macro", "micro", "weighted", None]),
    zd=st.sampled_from(ZERO_DIVISIONS),
    extra=st.booleans(),
)
def test_prf_matches_sklearn(data, average, zd, extra):
    skm = pytest.importorskip("sklearn.metrics")
    k, yt, yp = data
    labels = list(range(k + 2)) if extra else None  # two classes that occur nowhere
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours = M.precision_recall_fscore_support(
            yt, yp, labels=labels, average=average, zero_division=zd
        )
    with warnings.catch_warnings(record=True) as ref_w:
        warnings.simplefilter("always")
        ref = skm.precision_recall_fscore_support(
            yt, yp, labels=labels, average=average, zero_division=zd
        )
    for a, b in zip(ours[:3], ref[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-12, equal_nan=True)
    if average is None:
        np.testing.assert_array_equal(ours[3], ref[3])
    undefined = [w for w in ref_w if w.category.__name__ == "UndefinedMetricWarning"]
    assert bool(undefined) == any(w.category is M.UndefinedMetricWarning for w in ours_w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ours_fn, ref_fn in [
            (M.precision_score, skm.precision_score),
            (M.recall_score, skm.recall_score),
            (M.f1_score, skm.f1_score),
        ]:
            a = ours_fn(yt, yp, labels=labels, average=average, zero_division=zd)
            b = ref_fn(yt, yp, labels=labels, average=average, zero_division=zd)
            np.testing.assert_allclose(a, b, rtol=1e-12, equal_nan=True)
    assert M.accuracy_score(yt, yp) == skm.accuracy_score(yt, yp)


@FAST
@given(
    yt=st.lists(st.sampled_from(["neg", "pos"]), min_size=1, max_size=20),
    data=st.data(),
    zd=st.sampled_from(ZERO_DIVISIONS),
)
def test_binary_matches_sklearn(yt, data, zd):
    skm = pytest.importorskip("sklearn.metrics")
    yp = data.draw(st.lists(st.sampled_from(["neg", "pos"]), min_size=len(yt), max_size=len(yt)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ours_fn, ref_fn in [
            (M.precision_score, skm.precision_score),
            (M.recall_score, skm.recall_score),
            (M.f1_score, skm.f1_score),
        ]:
            a = ours_fn(yt, yp, pos_label="pos", zero_division=zd)
            b = ref_fn(yt, yp, pos_label="pos", zero_division=zd)
            np.testing.assert_allclose(a, b, rtol=1e-12, equal_nan=True)


@settings(FAST, max_examples=25)
@given(data=label_pairs(), perm_seed=st.integers(0, 1000), zd=st.sampled_from(ZERO_DIVISIONS))
def test_confusion_matrix_and_report_match_sklearn(data, perm_seed, zd):
    skm = pytest.importorskip("sklearn.metrics")
    k, yt, yp = data
    rng = np.random.default_rng(perm_seed)
    # a shuffled subset of the classes, maybe with one that occurs nowhere
    labels = rng.permutation(k + 1)[: rng.integers(1, k + 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when only one label occurs
        np.testing.assert_array_equal(M.confusion_matrix(yt, yp), skm.confusion_matrix(yt, yp))
        if np.isin(labels, yt).any():
            ours = M.confusion_matrix(yt, yp, labels=labels)
            np.testing.assert_array_equal(ours, skm.confusion_matrix(yt, yp, labels=labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kwargs in ({}, {"labels": labels}):
            # sklearn prints the support as a float ("1.0") when no sample at all is right
            # (a dtype artefact of its bincount); we always print counts as integers.
            if (yt == yp).any():
                ours = M.classification_report(yt, yp, zero_division=zd, **kwargs)
                assert ours == skm.classification_report(yt, yp, zero_division=zd, **kwargs)
            ours = M.classification_report(yt, yp, output_dict=True, zero_division=zd, **kwargs)
            ref = skm.classification_report(yt, yp, output_dict=True, zero_division=zd, **kwargs)
            assert list(ours) == list(ref)
            np.testing.assert_equal(ours, ref)  # compares nested dicts, NaN == NaN


# ----------------------------------------------------------------------------- regression, perplexity
def test_regression_by_hand():
    assert M.mse([1, 2, 3], [1, 2, 5]) == pytest.approx(4 / 3)
    assert M.mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    assert M.mse([[1, 2], [3, 4]], [[1, 2], [3, 6]]) == 1.0
    assert M.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert M.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert M.pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    with pytest.warns(RuntimeWarning, match="constant"):
        assert math.isnan(M.pearson([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="differ in shape"):
        M.mse([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="empty"):
        M.mae([], [])
    with pytest.raises(ValueError, match="at least 2"):
        M.pearson([1], [1])


@FAST
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=2, max_size=50))
def test_regression_matches_sklearn_scipy(pairs):
    skm = pytest.importorskip("sklearn.metrics")
    stats = pytest.importorskip("scipy.stats")
    a, b = np.array(pairs).T
    assert M.mse(a, b) == pytest.approx(skm.mean_squared_error(a, b), rel=1e-12, abs=1e-300)
    assert M.mae(a, b) == pytest.approx(skm.mean_absolute_error(a, b), rel=1e-12, abs=1e-300)
    if np.ptp(a) > 1e-6 and np.ptp(b) > 1e-6:
        assert M.pearson(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, rel=1e-9, abs=1e-12)


def test_perplexity():
    assert M.perplexity(0.0) == 1.0
    assert M.perplexity(math.log(50)) == pytest.approx(50)  # uniform over 50 tokens
    nll = np.array([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0]])
    mask = np.array([[1, 1, 0], [1, 0, 0]])  # 9.0 are padding
    assert M.perplexity(nll, mask) == pytest.approx(math.exp(2.0))
    assert M.perplexity(nll, mask.astype(bool)) == pytest.approx(math.exp(2.0))
    assert M.perplexity(nll) == pytest.approx(math.exp(nll.mean()))
    for args, match in [
        ((nll, mask[:1]), "does not match"),
        ((nll, 0 * mask), "no tokens"),
        ((np.array([]),), "empty"),
        ((1.0, [1]), "scalar"),
        ((nll, 2 * mask), "0 and 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            M.perplexity(*args)


# ----------------------------------------------------------------------------- BLEU by hand
def test_bleu_worked_example_and_limits():
    res = M.corpus_bleu(["the cat sat on the mat"], ["the cat is on the mat"])
    assert res.score == pytest.approx(100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25)
    assert res.precisions == pytest.approx([500 / 6, 60, 25, 100 / 6])
    assert (res.bp, res.sys_len, res.ref_len, res.ratio) == (1.0, 6, 6, 1.0)
    assert str(res).startswith("BLEU = 37.99 83.3/60.0/25.0/16.7 (BP = 1.000")
    assert M.corpus_bleu(["a b c d e"], ["a b c d e"]).score == pytest.approx(100)
    assert M.corpus_bleu(["a b c d e"], ["f g h i j"]).score == 0.0
    short = M.corpus_bleu(["a b c d"], ["a b c d e f"])  # BP = exp(1 - 6/4)
    assert short.bp == pytest.approx(math.exp(-0.5)) and short.score == pytest.approx(
        100 * math.exp(-0.5)
    )
    # no 4-grams at all: "none" smoothing gives 0, effective order ignores 4-grams
    assert M.corpus_bleu(["a b c"], ["a b c"], smooth="none").score == 0.0
    assert M.sentence_bleu("a b c", "a b c").score == pytest.approx(100)
    # two references: clip counts by the best reference, length = the closest one
    two = M.corpus_bleu(["x y z w"], [["x y z w q q q"], ["x y z w v"]])
    assert two.ref_len == 5 and two.sys_len == 4
    assert M.corpus_bleu(
        ["The Cat"], ["the cat"], lowercase=True, smooth="none", max_order=2
    ).score == pytest.approx(100)


def test_bleu_tokenizers_by_hand():
    assert tokenize_13a("Hello, world (2024)!") == "Hello , world ( 2024 ) !"
    assert (
        tokenize_13a("It costs 3.50 or 1,000 in 1990-2000.")
        == "It costs 3.50 or 1,000 in 1990 - 2000 ."
    )
    assert tokenize_13a("don't &quot;quote&quot; &amp;lt;") == 'don\'t " quote " <'
    assert tokenize_zh("我爱北京。OK, yes") == "我 爱 北 京 。 OK , yes"
    assert tokenize_char(" ab c").split() == ["a", "b", "c"]


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: M.corpus_bleu([], []), ValueError, "empty"),
        (lambda: M.corpus_bleu("a b", ["a b"]), TypeError, "list of strings"),
        (lambda: M.corpus_bleu(["a", "b"], ["a"]), ValueError, "streams"),
        (lambda: M.corpus_bleu(["a"], ["a"], tokenize="moses"), ValueError, "unknown tokenize"),
        (lambda: M.corpus_bleu(["a"], ["a"], smooth="laplace"), ValueError, "unknown smooth"),
        (lambda: M.corpus_bleu(["a"], [[None]]), ValueError, "no reference"),
        (lambda: M.sentence_bleu(["a"], ["a"]), TypeError, "single string"),
    ],
)
def test_bleu_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ----------------------------------------------------------------------------- BLEU vs sacrebleu
FIXTURE_HYPS = [
    "The cat, which was black, sat on the mat.",
    "He paid $3.50 for 1,000 apples in 1990-2000!",
    'She said: "I don\'t know" &amp; left.',
    "Short.",
    "An entirely different sentence with no overlap whatsoever",
]
FIXTURE_REFS = [
    ["The black cat sat on the mat.", "A black cat was sitting on the mat."],
    [
        "He paid $3.50 for 1,000 apples between 1990 and 2000.",
        "He spent $3.50 on 1,000 apples in 1990-2000.",
    ],
    ['She said "I do not know" and left.', 'She said: "I don\'t know" & left.'],
    ["This reference is much longer than the hypothesis.", "Brief."],
    ["Nothing in common here", None],
]
ZH_HYPS = ["我们今天去北京。", "他说：“你好！” OK, 3.5 元", "机器翻译很有趣"]
ZH_REFS = [["我们今天要去北京。"], ["他说：“你好！” OK, 3.5元"], ["机器翻译非常有趣。"]]

ALL_SETTINGS = [
    (tok, sm, lc)
    for tok in ("13a", "zh", "char", "none")
    for sm in ("exp", "none", "floor", "add-k")
    for lc in (False, True)
]


def assert_same_bleu(ours, ref):
    assert ours.score == pytest.approx(ref.score, rel=1e-9, abs=1e-9)
    assert ours.precisions == pytest.approx(ref.precisions, rel=1e-9, abs=1e-9)
    assert ours.bp == pytest.approx(ref.bp, rel=1e-12)
    assert ours.ratio == pytest.approx(ref.ratio, rel=1e-12)
    assert (ours.sys_len, ours.ref_len) == (ref.sys_len, ref.ref_len)


def _streams(refs_per_sentence):
    """Per-sentence reference lists -> sacrebleu streams (refs[k][i])."""
    return [list(stream) for stream in zip(*refs_per_sentence)]


@pytest.mark.parametrize("tok, smooth, lower", ALL_SETTINGS)
def test_bleu_fixtures_match_sacrebleu(tok, smooth, lower):
    sacrebleu = pytest.importorskip("sacrebleu")
    for hyps, refs in [(FIXTURE_HYPS, _streams(FIXTURE_REFS)), (ZH_HYPS, _streams(ZH_REFS))]:
        ours = M.corpus_bleu(hyps, refs, tokenize=tok, smooth=smooth, lowercase=lower)
        ref = sacrebleu.corpus_bleu(hyps, refs, tokenize=tok, smooth_method=smooth, lowercase=lower)
        assert_same_bleu(ours, ref)
        for h, r in zip(hyps, refs[0]):  # sentence level, effective order on
            ours = M.sentence_bleu(h, [r], tokenize=tok, smooth=smooth, lowercase=lower)
            ref = sacrebleu.sentence_bleu(
                h, [r], tokenize=tok, smooth_method=smooth, lowercase=lower
            )
            assert_same_bleu(ours, ref)


WORDS = [
    "the",
    "The",
    "cat",
    "sat",
    "on",
    "mat",
    "a",
    "dog",
    "3.5",
    "1,000",
    "1990-2000",
    "don't",
    "(",
    ")",
    ".",
    ",",
    "!",
    "?",
    '"',
    "&amp;",
    "&quot;",
    "-",
    "'s",
    "e.g.",
    "x,y",
    "我",
    "们",
    "北京",
    "。",
    "，",
    "“",
    "—",
    "…",
    "Ａ",
    "𠀀",
]
sentences = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)
SEPARATORS = st.sampled_from(["", " ", "  "])


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    n=st.integers(1, 4),
    n_refs=st.integers(1, 3),
    setting=st.sampled_from(ALL_SETTINGS),
)
def test_bleu_random_corpora_match_sacrebleu(data, n, n_refs, setting):
    sacrebleu = pytest.importorskip("sacrebleu")
    tok, smooth, lower = setting
    hyps = data.draw(st.lists(sentences, min_size=n, max_size=n))
    refs = [data.draw(st.lists(sentences, min_size=n, max_size=n)) for _ in range(n_refs)]
    ref = sacrebleu.corpus_bleu(hyps, refs, tokenize=tok, smooth_method=smooth, lowercase=lower)
    assert_same_bleu(M.corpus_bleu(hyps, refs, tokenize=tok, smooth=smooth, lowercase=lower), ref)
    ref = sacrebleu.sentence_bleu(hyps[0], [r[0] for r in refs], tokenize=tok, smooth_method=smooth)
    assert_same_bleu(
        M.sentence_bleu(hyps[0], [r[0] for r in refs], tokenize=tok, smooth=smooth), ref
    )


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_tokenizers_match_sacrebleu_on_any_text(text):
    pytest.importorskip("sacrebleu")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

    assert tokenize_13a(text) == Tokenizer13a()(text)
    assert tokenize_zh(text) == TokenizerZh()(text)


def test_zh_tokenizer_splits_the_same_code_points_as_sacrebleu():
    pytest.importorskip("sacrebleu")
    from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

    # every code point up to U+2FFFF, each between two letters: "a<c>a"
    for start in range(0x20, 0x30000, 0x8000):
        line = "".join(f"a{chr(c)}" for c in range(start, min(start + 0x8000, 0x30000)))
        assert tokenize_zh(line) == TokenizerZh()(line), hex(start)
