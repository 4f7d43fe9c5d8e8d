"""Causal-LM windows, collation, MLM masking, datasets and the DataLoader."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numtrans.data import (
    IGNORE_INDEX,
    CausalLMDataset,
    Collator,
    DataLoader,
    MLMCollator,
    TextClassificationDataset,
    TranslationDataset,
    causal_lm_example,
    default_collate,
    mask_tokens,
    pad_sequences,
    random_split,
    train_val_split,
)
from numtrans.tokenizers import CharTokenizer, WordTokenizer

# ---------------------------------------------------------------- causal LM


def test_windows_are_shifted_by_one():
    ds = CausalLMDataset(np.arange(10), block_size=3)
    assert len(ds) == 3  # starts 0, 3, 6 (the last needs tokens 6..9)
    x, y = ds[1]
    assert x.tolist() == [3, 4, 5] and y.tolist() == [4, 5, 6]
    assert ds[-1][1].tolist() == [7, 8, 9]
    with pytest.raises(IndexError):
        ds[3]
    overlapping = CausalLMDataset(np.arange(10), block_size=3, stride=1)
    assert len(overlapping) == 7 and overlapping[6][1].tolist() == [7, 8, 9]


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 60), st.integers(1, 8), st.integers(1, 5))
def test_window_properties(n, block, stride):
    if n < block + 1:
        with pytest.raises(ValueError, match="too short"):
            CausalLMDataset(np.arange(n), block, stride)
        return
    ds = CausalLMDataset(np.arange(n), block, stride)
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == y.shape == (block,)
        assert (y == x + 1).all() and x[0] == i * stride
    assert (len(ds) - 1) * stride + block + 1 <= n < len(ds) * stride + block + 1


def test_random_batch_is_seeded_and_in_range():
    ds = CausalLMDataset(np.arange(100), block_size=8)
    x, y = ds.random_batch(16, seed=3)
    assert x.shape == y.shape == (16, 8) and x.dtype == np.int64
    assert (y == x + 1).all() and x.min() >= 0 and y.max() <= 99
    x2, _ = ds.random_batch(16, seed=3)
    assert (x == x2).all()
    assert not (ds.random_batch(16, seed=4)[0] == x).all()


def test_train_val_split_is_nanogpts():
    text = "x" * 1_115_394
    train, val = train_val_split(text, 0.1)
    assert (len(train), len(val)) == (1_003_854, 111_540)
    tr, va = random_split(list(range(10)), 0.3, seed=0)
    assert len(va) == 3 and sorted(tr + va) == list(range(10))
    assert random_split(list(range(10)), 0.3, seed=0) == (tr, va)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(text, 1.5)


# ---------------------------------------------------------------- collation


def test_pad_sequences_and_collator():
    padded, mask = pad_sequences([[5, 6, 7], [9]], pad_value=0)
    assert padded.tolist() == [[5, 6, 7], [9, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    examples = [causal_lm_example([1, 2, 3, 4]), causal_lm_example([5, 6])]
    batch = Collator(pad_id=0)(examples)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [5, 0, 0]]
    assert batch["labels"].tolist() == [[2, 3, 4], [6, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert IGNORE_INDEX == -100
    with pytest.raises(ValueError, match="at least 2 tokens"):
        causal_lm_example([1])
    with pytest.raises(ValueError, match="keys"):
        Collator()([{"input_ids": [1]}, {"labels": [1]}])
    with pytest.raises(ValueError, match="max_length=2"):
        Collator(max_length=2)([{"input_ids": [1, 2, 3]}])


def test_default_collate_stacks_or_explains():
    x, y = default_collate([(np.zeros(3), 1), (np.ones(3), 0)])
    assert x.shape == (2, 3) and y.tolist() == [1, 0]
    with pytest.raises(ValueError, match="Collator"):
        default_collate([{"input_ids": [1, 2]}, {"input_ids": [1]}])


# ---------------------------------------------------------------- MLM masking


def test_mask_tokens_statistics_and_rules():
    rng = np.random.default_rng(0)
    vocab, mask_id, specials = 50, 4, [0, 1, 2, 3, 4]
    ids = rng.integers(5, vocab, size=(64, 128))
    ids[:, 0], ids[:, -10:] = 2, 0  # [CLS] first, padding at the end
    masked, labels = mask_tokens(ids, mask_id, vocab, specials, seed=1)
    chosen = labels != IGNORE_INDEX
    assert masked.shape == labels.shape == ids.shape and labels.dtype == np.int64
    assert not chosen[:, 0].any() and not chosen[:, -10:].any()  # specials never chosen
    assert (labels[chosen] == ids[chosen]).all()
    assert (masked[~chosen] == ids[~chosen]).all()
    eligible = 64 * 117
    assert abs(chosen.sum() / eligible - 0.15) < 0.01
    frac_mask = (masked[chosen] == mask_id).mean()
    frac_keep = (masked[chosen] == ids[chosen]).mean()
    assert abs(frac_mask - 0.8) < 0.03 and abs(frac_keep - 0.1) < 0.02
    randomized = chosen & (masked != mask_id) & (masked != ids)
    assert not np.isin(masked[randomized], specials).any()  # random tokens are ordinary


def test_mask_tokens_is_seeded_and_respects_attention_mask():
    ids = np.arange(5, 45).reshape(2, 20)
    a = mask_tokens(ids, 4, 50, seed=7)
    b = mask_tokens(ids, 4, 50, seed=7)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    attn = np.zeros_like(ids)
    _, labels = mask_tokens(ids, 4, 50, attention_mask=attn, mlm_probability=1.0)
    assert (labels == IGNORE_INDEX).all()
    with pytest.raises(ValueError, match=r"input ids must lie in \[0, 50\)"):
        mask_tokens(np.array([[60]]), 4, 50)


def test_mlm_collator_batches():
    tok = WordTokenizer.from_texts("the cat sat on the mat " * 5)
    examples = [tok.encode("the cat sat on the mat") * 4, tok.encode("the cat")]
    coll = MLMCollator(tok.pad_id, tok.token_to_id("<mask>"), tok.vocab_size, tok.special_ids)
    batch = coll(examples)
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert (batch["input_ids"][1, 2:] == tok.pad_id).all()


# ---------------------------------------------------------------- datasets


def test_classification_and_regression_datasets():
    tok = WordTokenizer.from_texts("good bad fine awful")
    rows = [("a", "pos", "good fine"), ("b", "neg", "awful"), ("c", "pos", "good")]
    ds = TextClassificationDataset.from_rows(rows, text_column=2, label_column=1, tokenizer=tok)
    assert ds.label_names == ["neg", "pos"] and ds.num_classes == 2
    assert ds[0]["label"] == 1 and ds[0]["input_ids"].tolist() == tok.encode("good fine")
    batch = DataLoader(ds, batch_size=3, collate_fn=Collator(tok.pad_id)).__iter__().__next__()
    assert batch["input_ids"].shape == (3, 2) and batch["label"].tolist() == [1, 0, 1]
    reg = TextClassificationDataset(["good", "bad"], [0.5, -1.0], tok, task="regression")
    assert reg[1]["label"] == -1.0 and reg.targets.dtype == np.float64
    numeric = TextClassificationDataset(["a"] * 3, [10, 2, 1], tok)
    assert numeric.label_names == ["1", "2", "10"] and numeric.targets.tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        TextClassificationDataset(["a", "b"], [1], tok)
    cut = TextClassificationDataset(["good fine awful"], [1], tok, max_length=2)
    assert cut[0]["input_ids"].tolist() == tok.encode("good fine")


def test_classification_truncation_keeps_bert_sep():
    import pathlib

    from numtrans.tokenizers import WordPieceTokenizer

    vocab = pathlib.Path(__file__).parent / "fixtures" / "tokenizers_wordpiece_vocab.txt"
    bert = WordPieceTokenizer.from_vocab_file(vocab)
    ds = TextClassificationDataset(["the movie was great fun"], ["pos"], bert, max_length=4)
    ids = ds[0]["input_ids"].tolist()
    assert len(ids) == 4 and ids[0] == bert.token_to_id("[CLS]")
    assert ids[-1] == bert.token_to_id("[SEP]")


def test_translation_dataset_and_collation():
    src = WordTokenizer.from_texts("how are you")
    tgt = CharTokenizer.from_text("你好吗", special_tokens=["<pad>", "<bos>", "<eos>"])
    ds = TranslationDataset([("how are you", "你好吗"), ("you", "你")], src, tgt)
    ex = ds[0]
    bos, eos = tgt.token_to_id("<bos>"), tgt.token_to_id("<eos>")
    assert ex["src_ids"].tolist() == src.encode("how are you") + [src.token_to_id("<eos>")]
    assert ex["tgt_ids"].tolist() == [bos] + tgt.encode("你好吗")
    assert ex["labels"].tolist() == tgt.encode("你好吗") + [eos]
    batch = Collator(pad_id=0)([ds[0], ds[1]])
    assert batch["src_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["tgt_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"][1].tolist() == [tgt.encode("你")[0], eos, -100, -100]
    with pytest.raises(KeyError, match="'<bos>' is not in the vocabulary"):
        TranslationDataset([("a", "b")], src, CharTokenizer.from_text("b"))


# ---------------------------------------------------------------- DataLoader


def test_dataloader_order_batches_and_drop_last():
    data = list(range(10))
    loader = DataLoader(data, batch_size=4)
    assert [b.tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(loader) == 3 and len(DataLoader(data, 4, drop_last=True)) == 2
    assert [len(b) for b in DataLoader(data, 4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(data, 0)


def test_dataloader_shuffle_is_deterministic_per_seed():
    data = list(range(20))
    a = DataLoader(data, 5, shuffle=True, seed=42)
    b = DataLoader(data, 5, shuffle=True, seed=42)
    epoch_a1 = np.concatenate(list(a))
    epoch_a2 = np.concatenate(list(a))
    assert sorted(epoch_a1.tolist()) == data and not (epoch_a1 == np.arange(20)).all()
    assert (epoch_a1 == np.concatenate(list(b))).all()  # same seed, same first epoch
    assert not (epoch_a1 == epoch_a2).all()  # a new order each epoch
    b.set_epoch(1)
    assert (np.concatenate(list(b)) == epoch_a2).all()  # resumable
    other = np.concatenate(list(DataLoader(data, 5, shuffle=True, seed=7)))
    assert not (other == epoch_a1).all()
