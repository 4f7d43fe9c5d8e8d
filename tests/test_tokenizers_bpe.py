"""Byte-level BPE: training, round trips, GPT-2 file format, and agreement with `tokenizers`."""

import functools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numtrans.data import load_corpus
from numtrans.tokenizers import ByteBPETokenizer, bytes_to_unicode, load, pre_tokenize
from numtrans.tokenizers.merging import PairCounts, merge_word

VARIED = [
    "Hello world!! It's 3.14, isn't it?  Yes:\tno\n\nmaybe   ",
    "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷",
    "combining e\u0301 n\u0303 vs é ñ; x² Ⅻ ½ ٣٤ 𝟘",
    "separators \x1c\x1d a\x85b c\u3000d e\u00a0f \u2028 g",
    "I'm   don't 'S 'll WE'VE ''",
    "<|endoftext|>after<|endoftext|> <|endoftext|>",
]


@functools.cache
def trained() -> ByteBPETokenizer:
    text = load_corpus("tinyshakespeare")[:60_000] + load_corpus("sishu_zh")[:8_000]
    return ByteBPETokenizer.train(text, vocab_size=600, special_tokens=["<|endoftext|>"])


def test_bytes_to_unicode_is_gpt2s_bijection():
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord("!")] == "!" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert all(c.isprintable() and not c.isspace() for c in table.values())


def test_pre_tokenize_examples():
    assert pre_tokenize("Hello world!!") == ["Hello", " world", "!!"]
    assert pre_tokenize("it's  3 cats\n") == ["it", "'s", " ", " 3", " cats", "\n"]


def test_merge_word_and_incremental_counts_match_recount():
    assert merge_word([1, 1, 1], 1, 1, 9) == [9, 1]
    words = [[1, 2, 3, 1, 2], [2, 3, 2, 3], [1, 1, 1]]
    pc = PairCounts([w[:] for w in words], [3, 2, 5])
    for pair, new in [((2, 3), 7), ((1, 7), 8), ((1, 1), 9)]:
        pc.merge(pair, new)
        fresh = PairCounts([w[:] for w in pc.words], [3, 2, 5])
        assert dict(pc.counts) == {p: c for p, c in fresh.counts.items() if c}


def test_training_learns_frequent_merges_first():
    tok = ByteBPETokenizer.train("low low low lower lowest newer newer", vocab_size=256 + 5)
    assert tok.merges[0] in {("l", "o"), ("Ġ", "l"), ("o", "w")}
    assert tok.vocab_size == 261 and len(tok.merges) == 5
    assert len(tok.encode(" low")) == 1  # " low" appears 3 times: one token


def test_training_respects_min_frequency_and_vocab_size_checks():
    tok = ByteBPETokenizer.train("abcdef", vocab_size=1000, min_frequency=2)
    assert tok.merges == [] and tok.vocab_size == 256
    with pytest.raises(ValueError, match="smaller than the 256 byte tokens"):
        ByteBPETokenizer.train("abc", vocab_size=100)


def test_chinese_merges_utf8_bytes():
    tok = trained()
    text = "子曰：学而时习之"
    ids = tok.encode(text)
    assert len(ids) < len(text.encode("utf-8"))  # bytes of common characters were merged
    assert b"".join(tok.token_bytes(i) for i in ids) == text.encode("utf-8")
    assert "子".encode() in [tok.token_bytes(i) for i in range(256, tok.vocab_size - 1)]


def test_special_tokens_are_atomic():
    tok = trained()
    eot = tok.special_id("<|endoftext|>")
    ids = tok.encode("a<|endoftext|>b")
    assert ids.count(eot) == 1 and tok.decode(ids) == "a<|endoftext|>b"
    assert tok.decode(ids, skip_special_tokens=True) == "ab"
    with pytest.raises(KeyError, match="unknown special token"):
        tok.special_id("<|im_start|>")


@pytest.mark.parametrize("text", VARIED)
def test_round_trip_varied(text):
    tok = trained()
    assert tok.decode(tok.encode(text)) == text


# Every code point, surrogates (category Cs, which st.characters() leaves out) included.
ANY_CHAR = st.one_of(st.characters(), st.characters(categories=["Cs"]))


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=ANY_CHAR, max_size=40))
def test_round_trip_any_unicode_including_lone_surrogates(text):
    tok = trained()
    assert tok.decode(tok.encode(text)) == text


def test_lone_surrogates_and_partial_characters():
    tok = trained()
    assert tok.decode(tok.encode("a\ud800b\udfff")) == "a\ud800b\udfff"
    ids = tok.encode("学")
    first_byte = tok.token_bytes(ids[0])[:1]
    byte_id = tok.token_to_id(bytes_to_unicode()[first_byte[0]])
    assert tok.decode([byte_id]) == "\ufffd"  # a cut character decodes to U+FFFD


def test_pad_token_and_batches():
    tok = ByteBPETokenizer.train("aa bb aa bb", 260, special_tokens=["<pad>"], pad_token="<pad>")
    batch = tok.encode_batch(["aa", "aa bb"])
    assert batch["input_ids"][0, -1] == tok.pad_id == tok.token_to_id("<pad>")
    assert batch["attention_mask"].sum(axis=1).tolist() == [
        len(tok.encode(t)) for t in ["aa", "aa bb"]
    ]
    with pytest.raises(KeyError, match="unknown special token '<pad>'"):
        ByteBPETokenizer.train("aa", 260, pad_token="<pad>")


def test_decode_errors():
    tok = trained()
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([tok.vocab_size])


def test_gpt2_files_round_trip(tmp_path):
    tok = trained()
    tok.save_pretrained(tmp_path)
    lines = (tmp_path / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "#version: 0.2" and len(lines) == len(tok.merges) + 2
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["!"] == 0 and vocab["<|endoftext|>"] == tok.vocab_size - 1
    back = ByteBPETokenizer.from_pretrained(tmp_path)  # specials detected
    assert back.special_tokens == ["<|endoftext|>"]
    for text in VARIED:
        assert back.encode(text) == tok.encode(text)


def test_json_save_load_round_trip(tmp_path):
    tok = trained()
    tok.save(tmp_path / "bpe.json")
    back = load(tmp_path / "bpe.json")
    assert isinstance(back, ByteBPETokenizer) and back.merges == tok.merges
    for text in VARIED:
        assert back.encode(text) == tok.encode(text)


@settings(max_examples=10, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_train_save_load_round_trip_hypothesis(tmp_path_factory, text):
    tok = ByteBPETokenizer.train(text * 3, vocab_size=270, min_frequency=2)
    path = tmp_path_factory.mktemp("bpe") / "tok.json"
    tok.save(path)
    back = load(path)
    assert back.encode(text) == tok.encode(text)
    assert back.decode(back.encode(text)) == text


def test_missing_and_malformed_gpt2_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.json not found"):
        ByteBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0, "b": 1, "ab": 2}', encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="merges file not found"):
        ByteBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\nab\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: expected two tokens"):
        ByteBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\na c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing from the vocab"):
        ByteBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0, "b": 5}', encoding="utf-8")
    with pytest.raises(ValueError, match="ids must be exactly"):
        ByteBPETokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text('{"a": 0,', encoding="utf-8")
    with pytest.raises(ValueError, match="malformed JSON"):
        ByteBPETokenizer.from_pretrained(tmp_path)


# ---------------------------------------------------------------- the `tokenizers` library


def _hf_from_files(directory):
    tk = pytest.importorskip("tokenizers")
    hf = tk.Tokenizer(
        tk.models.BPE.from_file(str(directory / "vocab.json"), str(directory / "merges.txt"))
    )
    hf.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = tk.decoders.ByteLevel()
    hf.add_special_tokens(["<|endoftext|>"])
    return hf


def test_pre_tokenizer_matches_tokenizers_bytelevel():
    tk = pytest.importorskip("tokenizers")
    ref = tk.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    table = bytes_to_unicode()
    for text in VARIED + [load_corpus("tinyshakespeare")[:3000]]:
        mine = ["".join(table[b] for b in c.encode()) for c in pre_tokenize(text)]
        assert mine == [piece for piece, _ in ref.pre_tokenize_str(text)]


def test_trained_tokenizer_gives_identical_ids_in_tokenizers(tmp_path):
    tok = trained()
    tok.save_pretrained(tmp_path)
    hf = _hf_from_files(tmp_path)
    sample = load_corpus("tinyshakespeare")[100_000:110_000] + load_corpus("sishu_zh")[-2000:]
    for text in VARIED + [sample]:
        assert hf.encode(text).ids == tok.encode(text), text[:40]
        assert hf.decode(tok.encode(text), skip_special_tokens=False) == text


@settings(max_examples=30, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs", "Cn"]), max_size=60))
def test_identical_ids_in_tokenizers_hypothesis(tmp_path_factory, text):
    pytest.importorskip("tokenizers")
    directory = tmp_path_factory.getbasetemp() / "bpe_hf"
    if not (directory / "vocab.json").exists():
        trained().save_pretrained(directory)
    assert _hf_from_files(directory).encode(text).ids == trained().encode(text)
