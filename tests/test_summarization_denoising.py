"""BART-style noise (numtrans/summarization/denoising.py): the Chinese sentence splitter, span
masking (the stated fraction covered, one <mask> per span, seeded), sentence shuffling (the same
multiset), document chunking, and the reconstruction dataset's layout."""

from __future__ import annotations

import numpy as np
import pytest

from numtrans.summarization import (
    DenoisingDataset,
    char_tokenizer,
    chunk_text,
    noise_document,
    shuffle_sentences,
    span_mask,
    split_zh_sentences,
)

MASK = -1


@pytest.mark.parametrize(
    "text, expect",
    [
        ("建立了模型.仿真结果表明,速度提高3.5倍。很好", ["建立了模型.", "仿真结果表明,速度提高3.5倍。", "很好"]),
        ("他说：“好。”然后走了！真的？", ["他说：“好。”", "然后走了！", "真的？"]),
        ("没有句号", ["没有句号"]),
    ],
)  # fmt: skip
def test_split_zh_sentences(text, expect):
    assert split_zh_sentences(text) == expect
    assert "".join(split_zh_sentences(text)) == text


def _runs(covered: np.ndarray) -> int:
    """How many maximal runs of True ``covered`` has."""
    return int(np.sum(covered & ~np.concatenate([[False], covered[:-1]])))


@pytest.mark.parametrize("n", [1, 10, 37, 200])
@pytest.mark.parametrize("ratio", [0.0, 0.15, 0.3, 0.5, 1.0])
def test_span_mask_covers_the_stated_fraction(n, ratio):
    ids = list(range(100, 100 + n))
    out, covered = span_mask(ids, MASK, np.random.default_rng(n), ratio)
    assert covered.sum() == round(ratio * n)
    # the kept tokens in order, and one <mask> per covered run (adjacent spans merge)
    assert [t for t in out if t != MASK] == [t for t, c in zip(ids, covered) if not c]
    assert out.count(MASK) == _runs(covered)
    # each <mask> stands where its run was: the text read left to right
    expect = []
    for i, tok in enumerate(ids):
        if not covered[i]:
            expect.append(tok)
        elif i == 0 or not covered[i - 1]:
            expect.append(MASK)
    assert out == expect


def test_span_mask_spans_are_poisson_long_and_seeded():
    ids = list(range(1000))
    out, covered = span_mask(ids, MASK, np.random.default_rng(0), 0.3, poisson_lambda=3.0)
    mean_run = covered.sum() / _runs(covered)
    assert 2.5 < mean_run < 6.0  # Poisson(3) spans (zero-length counted as 1, some merged)
    again, _ = span_mask(ids, MASK, np.random.default_rng(0), 0.3)
    other, _ = span_mask(ids, MASK, np.random.default_rng(1), 0.3)
    assert again == out and other != out
    with pytest.raises(ValueError, match="mask_ratio"):
        span_mask(ids, MASK, np.random.default_rng(0), 1.5)
    with pytest.raises(ValueError, match="poisson_lambda"):
        span_mask(ids, MASK, np.random.default_rng(0), 0.3, poisson_lambda=0)


def test_shuffle_keeps_the_sentence_multiset():
    sentences = ["甲。", "乙。", "丙。", "甲。", "丁。", "戊。"]
    orders = set()
    for seed in range(10):
        out = shuffle_sentences(sentences, np.random.default_rng(seed))
        assert sorted(out) == sorted(sentences)
        assert out == shuffle_sentences(sentences, np.random.default_rng(seed))
        orders.add(tuple(out))
    assert len(orders) > 1


def test_noise_document_and_dataset_layout():
    docs = ["第一句。第二句话。第三句.最后", "只有一句"]
    tok = char_tokenizer(docs)
    mask_id = tok.token_to_id("<mask>")
    src, tgt = noise_document(docs[0], tok, mask_id, np.random.default_rng(0), 0.3)
    assert tgt == tok.encode(docs[0])
    kept = [t for t in src if t != mask_id]
    assert len(kept) == len(tgt) - round(0.3 * len(tgt))
    assert set(kept) <= set(tgt)
    ds = DenoisingDataset(docs, tok, np.random.default_rng(0), copies=3, max_length=64)
    assert len(ds) == 3 * len(docs)
    bos, eos = tok.token_to_id("<bos>"), tok.token_to_id("<eos>")
    for ex in ds.examples:
        assert ex["src_ids"][-1] == eos and ex["tgt_ids"][0] == bos and ex["labels"][-1] == eos
        assert list(ex["labels"][:-1]) == list(ex["tgt_ids"][1:])
        assert mask_id in ex["src_ids"]
    first = [ds[i]["src_ids"].tolist() for i in (0, 2)]  # the same document, two noisings
    assert first[0] != first[1] or len(docs[0]) < 4
    from numtrans.tokenizers import CharTokenizer

    with pytest.raises(ValueError, match="<mask>"):
        DenoisingDataset(
            docs, CharTokenizer("第一句", ["<pad>", "<unk>"]), np.random.default_rng(0)
        )


def test_chunk_text_keeps_every_character_within_the_limit():
    texts = ["一二三。四五六。", "七八九十。" * 5, "短", "长" * 30]
    docs = chunk_text(texts, max_chars=12)
    assert all(0 < len(d) <= 12 for d in docs)
    assert "".join(docs) == "".join(t.strip() for t in texts)
    assert docs[0] == "一二三。四五六。"  # whole sentences while they fit
    with pytest.raises(ValueError, match="max_chars"):
        chunk_text(texts, 0)
