"""Bundled corpora (offline, checksummed) and the user's own text/TSV files."""

import gzip
import hashlib
import pathlib

import pytest

from numtrans.data import corpus as corpus_mod
from numtrans.data import corpus_info, list_corpora, load_corpus, parse_tsv

PACKAGE_DIR = pathlib.Path(corpus_mod.__file__).parent / "corpora"


def test_all_four_corpora_are_bundled_with_licenses():
    assert list_corpora() == ["sishu_zh", "tatoeba_cmn_eng", "tinyshakespeare", "uci_sentiment"]
    licenses = (PACKAGE_DIR / "LICENSES.md").read_text(encoding="utf-8")
    for name in list_corpora():
        info = corpus_info(name)
        assert (PACKAGE_DIR / info["file"]).is_file()
        assert info["sha256"] in licenses and info["license"]


def test_tinyshakespeare():
    text = load_corpus("tinyshakespeare")
    assert len(text) == 1_115_394 and len(set(text)) == 65
    assert text.startswith("First Citizen:")
    assert load_corpus("shakespeare") == text  # alias


def test_uci_sentiment_keeps_c1_characters_inside_rows():
    rows = load_corpus("uci_sentiment")
    assert len(rows) == 3000 and all(len(r) == 3 for r in rows)
    assert sum(r[1] == "1" for r in rows) == 1500
    assert {r[0] for r in rows} == {"amazon", "imdb", "yelp"}
    assert any("\x85" in r[2] or "\x96" in r[2] or "\x97" in r[2] for r in rows)


def test_tatoeba_keeps_attribution():
    rows = load_corpus("tatoeba_cmn_eng")
    assert len(rows) == 29_155
    assert rows[0][:2] == ("Hi.", "嗨。")
    assert all(r[2].startswith("CC-BY 2.0 (France) Attribution: tatoeba.org") for r in rows[::97])


def test_sishu():
    text = load_corpus("sishu_zh")
    assert len(text) == 74_601 and text.startswith("《论语·学而篇》")


def test_checksum_is_verified_once_and_detects_corruption(monkeypatch):
    load_corpus("sishu_zh")
    assert "sishu_zh" in corpus_mod._verified
    monkeypatch.setattr(corpus_mod, "_verified", set())
    bad = dict(corpus_mod.CORPORA["sishu_zh"], sha256="0" * 64)
    monkeypatch.setitem(corpus_mod.CORPORA, "sishu_zh", bad)
    with pytest.raises(RuntimeError, match="corrupt"):
        load_corpus("sishu_zh")


def test_decompressed_bytes_match_published_sha256():
    for name in list_corpora():
        info = corpus_info(name)
        data = gzip.decompress((PACKAGE_DIR / info["file"]).read_bytes())
        assert hashlib.sha256(data).hexdigest() == info["sha256"]


def test_unknown_name_lists_the_corpora():
    with pytest.raises(ValueError, match="unknown corpus 'wikitext'.*tinyshakespeare"):
        load_corpus("wikitext")


# ---------------------------------------------------------------- user files


def test_user_text_and_tsv_files(tmp_path):
    txt = tmp_path / "mine.txt"
    txt.write_text("hello\nworld\n", encoding="utf-8")
    assert load_corpus(txt) == "hello\nworld\n"
    assert load_corpus(str(txt)) == "hello\nworld\n"
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("src\ttgt\r\nhi\t你好\r\n\nbye\t再见\n", encoding="utf-8")
    assert load_corpus(tsv, header=True) == [("hi", "你好"), ("bye", "再见")]
    gz = tmp_path / "pairs.tsv.gz"
    gz.write_bytes(gzip.compress(b"a\tb\n"))
    assert load_corpus(gz) == [("a", "b")]
    assert load_corpus(txt, tsv=True) == [("hello",), ("world",)]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus file not found: .*nope.txt"):
        load_corpus(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="corpus file not found"):
        load_corpus("some/dir/file")


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("line one\ncafé\n".encode("latin-1"))
    with pytest.raises(
        ValueError, match=r"not valid utf-8 at line 2 \(byte offset 12, byte 0xe9\)"
    ):
        load_corpus(path)
    assert load_corpus(path, encoding="latin-1") == "line one\ncafé\n"


def test_malformed_row_names_the_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("a\t1\nb\t2\nc\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"bad.tsv, line 3: expected 2 tab-separated fields, found 1"
    ):
        load_corpus(path)
    with pytest.raises(ValueError, match="line 1: expected 3"):
        parse_tsv("a\tb\n", columns=3)
    assert parse_tsv("x\ty\n") == [("x", "y")]
