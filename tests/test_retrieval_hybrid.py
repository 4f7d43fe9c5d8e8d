"""Reciprocal-rank fusion on hand-made rankings, the hybrid retriever, and knowledge-base files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from numtrans.retrieval import (
    BM25,
    DenseIndex,
    HybridRetriever,
    fuse,
    read_documents,
    reciprocal_rank_fusion,
    tokenize,
)


def test_rrf_hand_computed():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]], k=60)
    expect = {
        "a": 1 / 61,
        "b": 1 / 62 + 1 / 61,
        "c": 1 / 63 + 1 / 62,
        "d": 1 / 63,
    }
    assert [d for d, _ in fused] == ["b", "c", "a", "d"]
    for doc, score in fused:
        assert score == pytest.approx(expect[doc], rel=1e-15)
    # k = 0: plain reciprocal ranks, 1 + 1/2 for b
    assert dict(reciprocal_rank_fusion([["a", "b"], ["b"]], k=0)) == {"a": 1.0, "b": 1.5}


def test_rrf_agreement_beats_one_first_place():
    # x is 1st in one list only; y is 2nd in both: 2/62 > 1/61
    fused = reciprocal_rank_fusion([["x", "y"], ["z", "y"], ["w", "y"]])
    assert fused[0][0] == "y"


def test_rrf_ties():
    # a and b tie exactly (1/61 + 1/62 each): a was first seen (rank 1 of the first list)
    assert [d for d, _ in reciprocal_rank_fusion([["a", "b"], ["b", "a"]])] == ["a", "b"]
    assert [d for d, _ in reciprocal_rank_fusion([["b", "a"], ["a", "b"]])] == ["b", "a"]
    # p, r tie at 1/61, q, s at 1/62: rank by rank, then list order
    fused = reciprocal_rank_fusion([["p", "q"], ["r", "s"]])
    assert [d for d, _ in fused] == ["p", "r", "q", "s"]
    # three-term sums equal in any order (math.fsum): 1/61+1/62+1/63 from permuted lists
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 2], [2, 3, 1]])
    assert fused[0][1] == fused[1][1] == fused[2][1]
    assert [d for d, _ in fused] == [1, 3, 2]


def test_rrf_bad_input():
    with pytest.raises(ValueError, match="twice"):
        reciprocal_rank_fusion([["a", "a"]])
    with pytest.raises(ValueError, match="non-empty"):
        reciprocal_rank_fusion([])
    with pytest.raises(ValueError, match="string"):
        reciprocal_rank_fusion(["abc"])


def test_fuse_rows_equals_rrf_per_query():
    lexical = np.array([[0, 1, 2], [2, 0, 1]])
    dense = np.array([[1, 2, 0], [2, 1, 0]])
    # row 0: 1 = 1/62 + 1/61 wins; row 1: 0 and 1 tie (1/62 + 1/63), 0 was seen first
    assert fuse(lexical, dense, k=2) == [[1, 0], [2, 0]]


class _FakeDense:
    """A DenseRetriever stand-in: fixed rankings, so the fusion is what is tested."""

    def __init__(self, index, ranking):
        self.index, self.ranking = index, ranking

    def retrieve(self, queries, k):
        ids = np.array([self.ranking[:k]] * len(queries))
        return np.zeros(ids.shape), ids


def test_hybrid_retriever_fuses_bm25_and_dense():
    docs = ["the red cat sat", "a blue dog ran", "red red apples", "green grass"]
    index = DenseIndex(np.eye(4), docs)
    dense = _FakeDense(index, [3, 1, 0, 2])
    hybrid = HybridRetriever.from_dense(dense, depth=4)
    bm = BM25([tokenize(d) for d in docs]).top_k(tokenize("red cat"), 4).tolist()
    assert bm[:2] == [0, 2]
    got = hybrid.retrieve(["red cat"], k=4)[0]
    expect = [d for d, _ in reciprocal_rank_fusion([bm, [3, 1, 0, 2]])]
    assert got == expect and got[0] == 0  # 1st + 3rd beats 4th + 1st
    with pytest.raises(ValueError, match="BM25 indexes 2 documents"):
        HybridRetriever(BM25([["a"], ["b"]]), dense)


def test_read_documents_text_and_jsonl(tmp_path):
    txt = tmp_path / "kb.txt"
    txt.write_bytes("first passage\n\n  second\u0085 passage  \r\nthird\n".encode())
    assert read_documents(txt) == ["first passage", "second\u0085 passage", "third"]
    jl = tmp_path / "kb.jsonl"
    rows = [{"id": 1, "text": "alpha"}, {"text": "béta", "title": "t"}]
    jl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_documents(jl) == ["alpha", "béta"]


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"no passages"),
        (b"\n  \n", r"no passages"),
        (b"ok\n\xff\xfe bad\n", r"kb:2: not UTF-8"),
        (b"ok\nnul\x00byte\n", r"kb:2: a NUL byte"),
        (b'{"text": "a"}\n{"text": \n', r"kb:2: not valid JSON"),
        (b'{"text": "a"}\n{"body": "b"}\n', r'kb:2: expected a JSON object with a "text"'),
        (b'{"text": "a"}\n[1, 2]\n', r"kb:2: expected a JSON object"),
        (b'{"text": 3}\n', r'kb:1: expected a JSON object with a "text" string'),
        (b'\n{"text": "  "}\n', r'kb:2: empty "text"'),
    ],
)
def test_bad_knowledge_base_files(tmp_path, content, match):
    path = tmp_path / "kb"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as err:
        read_documents(path)
    assert "\n" not in str(err.value)


def test_missing_knowledge_base(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_documents(tmp_path / "nope.txt")


def test_tokenize():
    assert tokenize("Super Bowl 50's MVP, Von_Miller!") == [
        "super",
        "bowl",
        "50",
        "s",
        "mvp",
        "von_miller",
    ]
    assert tokenize("") == []
