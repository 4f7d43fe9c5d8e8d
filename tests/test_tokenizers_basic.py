"""Char and word tokenizers, the shared interface, batching, save/load and bad input."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numtrans.tokenizers import CharTokenizer, Tokenizer, WordTokenizer, load, pad_batch

# ---------------------------------------------------------------- CharTokenizer


def test_char_vocab_is_sorted_characters():
    tok = CharTokenizer.from_text("hello")
    assert tok.tokens == ["e", "h", "l", "o"]
    assert tok.encode("hole") == [1, 3, 2, 0]
    assert tok.decode([1, 3, 2, 0]) == "hole"
    assert tok.vocab_size == 4 == len(tok)


def test_char_specials_come_first_and_unknown_maps_to_unk():
    tok = CharTokenizer.from_text("ab", special_tokens=["<pad>", "<unk>"])
    assert tok.tokens == ["<pad>", "<unk>", "a", "b"]
    assert (tok.pad_id, tok.unk_id) == (0, 1)
    assert tok.encode("abz") == [2, 3, 1]
    assert tok.decode([0, 2, 3], skip_special_tokens=True) == "ab"


def test_char_unknown_without_unk_is_a_clear_error():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"'z' \(U\+007A\) at position 1"):
        tok.encode("az")


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1))
def test_char_round_trip_on_its_domain(text):
    tok = CharTokenizer.from_text(text)
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert tok.decode(ids) == text


def test_char_tiny_shakespeare_has_65_characters():
    from numtrans.data import load_corpus

    text = load_corpus("tinyshakespeare")
    tok = CharTokenizer.from_text(text)
    assert tok.vocab_size == 65
    assert tok.decode(tok.encode(text[:1000])) == text[:1000]


# ---------------------------------------------------------------- WordTokenizer


def test_word_pre_tokenize_rules():
    got = WordTokenizer.pre_tokenize("Don't panic, it's 3.14! 学习 café")
    assert got == ["Don't", "panic", ",", "it's", "3.14", "!", "学", "习", "café"]
    assert WordTokenizer.pre_tokenize("Hello WORLD", lowercase=True) == ["hello", "world"]


def test_word_specials_have_stable_ids():
    tok = WordTokenizer.from_texts(["b a a c c c"])
    expected = ["<pad>", "<unk>", "<bos>", "<eos>", "<mask>", "<cls>", "<sep>"]
    assert tok.tokens[:7] == expected
    assert [tok.token_to_id(t) for t in expected] == list(range(7))
    assert tok.tokens[7:] == ["c", "a", "b"]  # by frequency, then alphabetical


def test_word_min_freq_max_size_and_unk():
    tok = WordTokenizer.from_texts("the cat the dog the cat a", min_freq=2)
    assert tok.tokens[7:] == ["the", "cat"]
    assert tok.encode("the bird") == [7, tok.unk_id]
    small = WordTokenizer.from_texts("the cat the dog the cat a", max_size=8)
    assert small.vocab_size == 8 and small.tokens[7] == "the"
    with pytest.raises(ValueError, match="max_size"):
        WordTokenizer.from_texts("x", max_size=3)


def test_word_bos_eos_and_lowercase():
    tok = WordTokenizer.from_texts("Hello world", lowercase=True)
    ids = tok.encode("HELLO World", add_bos=True, add_eos=True)
    assert ids[0] == tok.token_to_id("<bos>") and ids[-1] == tok.token_to_id("<eos>")
    assert tok.decode(ids) == "<bos> hello world <eos>"
    assert tok.decode(ids, skip_special_tokens=True) == "hello world"


words = st.one_of(
    st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True),
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,2})?", fullmatch=True),
    st.sampled_from([",", ".", "!", "?", "学", "习", "😀", "naïve", "don't"]),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(words, min_size=1, max_size=20))
def test_word_round_trip_on_its_domain(tokens):
    text = " ".join(tokens)  # the domain: known tokens separated by single spaces
    tok = WordTokenizer.from_texts(text)
    assert tok.tokenize(text) == tokens
    assert tok.decode(tok.encode(text)) == text


# ---------------------------------------------------------------- shared interface


def test_encode_batch_pads_and_masks():
    tok = CharTokenizer.from_text("abc", special_tokens=["<pad>"])
    batch = tok.encode_batch(["abc", "a", "bb"])
    assert batch["input_ids"].dtype == np.int64
    np.testing.assert_array_equal(batch["input_ids"], [[1, 2, 3], [1, 0, 0], [2, 2, 0]])
    np.testing.assert_array_equal(batch["attention_mask"], [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    fixed = tok.encode_batch(["abc", "a"], padding="max_length", max_length=5)
    assert fixed["input_ids"].shape == (2, 5)
    cut = tok.encode_batch(["abcabc", "a"], truncation=True, max_length=2)
    np.testing.assert_array_equal(cut["input_ids"], [[1, 2], [1, 0]])


def test_encode_batch_without_pad_token_needs_pad_id():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="no pad token"):
        tok.encode_batch(["a", "bc"])
    assert tok.encode_batch(["a", "bc"], pad_id=0)["input_ids"].tolist() == [[0, 0], [1, 2]]


def test_pad_batch_errors():
    with pytest.raises(ValueError, match="different lengths"):
        pad_batch([[1], [1, 2]], 0, padding=False)
    with pytest.raises(ValueError, match="max_length"):
        pad_batch([[1, 2, 3]], 0, padding="max_length", max_length=2)
    with pytest.raises(ValueError, match="padding must be"):
        pad_batch([[1]], 0, padding="left")


@pytest.mark.parametrize("bad", [[0, 4], [-1], [1.5], ["a"]])
def test_decode_rejects_bad_ids(bad):
    tok = CharTokenizer.from_text("abcd")
    with pytest.raises((ValueError, TypeError), match="position|out of range"):
        tok.decode(bad)


def test_decode_out_of_range_message():
    tok = WordTokenizer.from_texts("a b")
    with pytest.raises(ValueError, match="token id 99 at position 1 is out of range .* size 9"):
        tok.decode([7, 99])
    with pytest.raises(ValueError, match="one sequence"):
        tok.decode([[7, 8]])


def test_unknown_special_token_is_a_clear_error():
    tok = WordTokenizer.from_texts("a b")
    assert tok.special_id("<mask>") == 4
    with pytest.raises(KeyError, match="unknown special token '<foo>'"):
        tok.special_id("<foo>")
    with pytest.raises(KeyError, match="not in the vocabulary"):
        tok.token_to_id("zebra")
    with pytest.raises(KeyError, match="unknown special token"):
        CharTokenizer.from_text("ab", special_tokens=["<pad>"], unk_token="<unk>")


# ---------------------------------------------------------------- save / load


@settings(max_examples=15, deadline=None)
@given(st.text(min_size=1, max_size=50))
def test_char_save_load_round_trip(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("char") / "tok.json"
    tok = CharTokenizer.from_text(text, special_tokens=["<pad>", "<unk>"])
    tok.save(path)
    back = load(path)
    assert isinstance(back, CharTokenizer)
    assert back.tokens == tok.tokens and back.pad_id == tok.pad_id and back.unk_id == tok.unk_id
    assert back.encode(text) == tok.encode(text)


@settings(max_examples=15, deadline=None)
@given(st.lists(words, min_size=1, max_size=10), st.booleans())
def test_word_save_load_round_trip(tmp_path_factory, tokens, lowercase):
    path = tmp_path_factory.mktemp("word") / "tok.json"
    text = " ".join(tokens)
    tok = WordTokenizer.from_texts(text, lowercase=lowercase)
    tok.save(path)
    back = WordTokenizer.load(path)
    assert back.tokens == tok.tokens and back.lowercase == lowercase
    assert back.encode(text) == tok.encode(text)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer file not found"):
        load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="malformed JSON"):
        load(bad)
    bad.write_text(json.dumps({"tokens": []}), encoding="utf-8")
    with pytest.raises(ValueError, match="no 'type' field"):
        load(bad)
    bad.write_text(json.dumps({"type": "Nope", "tokens": [], "special_tokens": []}))
    with pytest.raises(ValueError, match="unknown tokenizer type 'Nope'"):
        load(bad)
    bad.write_text(json.dumps({"type": "CharTokenizer", "tokens": "abc", "special_tokens": []}))
    with pytest.raises(ValueError, match="'tokens' must be a list"):
        load(bad)
    good = tmp_path / "char.json"
    CharTokenizer.from_text("ab").save(good)
    with pytest.raises(TypeError, match="holds a CharTokenizer"):
        WordTokenizer.load(good)


def test_duplicate_tokens_rejected():
    with pytest.raises(ValueError, match="duplicate token 'a'"):
        Tokenizer(["a", "b", "a"])
