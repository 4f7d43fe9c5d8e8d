"""Real text shipped with numtrans, and the user's own text or TSV files.

    text = load_corpus("tinyshakespeare")   # str, 1,115,394 characters
    rows = load_corpus("uci_sentiment")     # [(source, label, sentence), ...], 3,000 rows
    rows = load_corpus("my_pairs.tsv")      # your own file: tuples of fields

Bundled corpora live gzip-compressed in ``numtrans/data/corpora/`` with their licenses
(``LICENSES.md`` there, and :func:`corpus_info`). Nothing is downloaded. On the first load in a
process the sha256 of the decompressed bytes is checked against the published value.

Text files load as one ``str``. TSV files load as a list of tuples of strings, one per line,
split on tab; the header line of a bundled corpus is dropped (its names are in
``corpus_info(name)["columns"]``). Lines are split on ``"\\n"`` only: ``str.splitlines`` would
also split on U+0085, which occurs inside some UCI sentences.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from importlib import resources

CORPORA = {
    "tinyshakespeare": {
        "file": "tinyshakespeare.txt.gz",
        "sha256": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        "columns": None,
        "header": False,
        "origin": "karpathy/char-rnn data/tinyshakespeare/input.txt",
        "license": "public domain (Shakespeare's text)",
    },
    "uci_sentiment": {
        "file": "uci_sentiment.tsv.gz",
        "sha256": "1018490091d0333e1b5d4cdf5f952611df97ec9052e205e654f7247b3b1607ef",
        "columns": ("source", "label", "sentence"),
        "header": True,
        "origin": "UCI ML Repository dataset 331, Sentiment Labelled Sentences",
        "license": "CC BY 4.0; cite Kotzias, Denil, de Freitas, Smyth, KDD 2015",
    },
    "tatoeba_cmn_eng": {
        "file": "tatoeba_cmn_eng.tsv.gz",
        "sha256": "9da1af87e3e61650aa38595e60baef3a4e3a18ed239a7ef4a764c0a87c7ddeff",
        "columns": ("english", "chinese", "attribution"),
        "header": False,
        "origin": "Tatoeba sentence pairs (tatoeba.org), manythings.org cmn-eng format",
        "license": "CC BY 2.0 FR; attribution of each pair in its third column",
    },
    "sishu_zh": {
        "file": "sishu_zh.txt.gz",
        "sha256": "a6940a1ae90c537210930e56c71588f975a2977fc65cc681ed21451cf3cf5a3e",
        "columns": None,
        "header": False,
        "origin": "The Four Books, from the chinese-poetry/chinese-poetry collection",
        "license": "public domain texts; compilation MIT, Copyright (c) 2016 JackeyGao",
    },
}
ALIASES = {"shakespeare": "tinyshakespeare", "sishu": "sishu_zh", "tatoeba": "tatoeba_cmn_eng"}

_verified: set[str] = set()  # corpora whose checksum passed in this process


def list_corpora() -> list[str]:
    return sorted(CORPORA)


def corpus_info(name: str) -> dict:
    """Origin, license, sha256, file and columns of a bundled corpus."""
    return {"name": _canonical(name), **CORPORA[_canonical(name)]}


def _canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in CORPORA:
        raise ValueError(
            f"unknown corpus {name!r}: bundled corpora are {list_corpora()}; "
            "or pass the path of a .txt or .tsv file"
        )
    return name


def _bundled_bytes(name: str) -> bytes:
    info = CORPORA[name]
    data = gzip.decompress(
        resources.files(__package__).joinpath("corpora", info["file"]).read_bytes()
    )
    if name not in _verified:
        digest = hashlib.sha256(data).hexdigest()
        if digest != info["sha256"]:
            raise RuntimeError(
                f"corpus {name!r} is corrupt: sha256 {digest} != expected {info['sha256']}; "
                "reinstall numtrans"
            )
        _verified.add(name)
    return data


def _looks_like_path(name) -> bool:
    if not isinstance(name, str):
        return True  # os.PathLike
    return os.sep in name or "/" in name or os.path.splitext(name)[1] != "" or os.path.exists(name)


def load_corpus(
    name_or_path: str | os.PathLike,
    *,
    tsv: bool | None = None,
    columns: int | None = None,
    header: bool = False,
    encoding: str = "utf-8",
):
    """Load a bundled corpus by name, or a text/TSV file by path.

    For a path: ``tsv=None`` guesses from the extension (``.tsv``, ``.tsv.gz``); ``.gz`` files are
    decompressed; ``columns`` fixes the number of fields per row (default: the first row's);
    ``header=True`` drops the first line. Returns ``str`` (text) or ``list[tuple[str, ...]]``.
    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the line for a
    wrong encoding or a row with the wrong number of fields.
    """
    if isinstance(name_or_path, str) and ALIASES.get(name_or_path, name_or_path) in CORPORA:
        name = _canonical(name_or_path)
        info = CORPORA[name]
        text = _bundled_bytes(name).decode("utf-8")
        if info["columns"] is None:
            return text
        return parse_tsv(text, len(info["columns"]), info["header"], source=name)
    if not _looks_like_path(name_or_path):
        _canonical(name_or_path)  # raises: names the bundled corpora
    path = os.fspath(name_or_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"corpus file not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    text = decode_text(data, encoding, path)
    if tsv is None:
        tsv = path.removesuffix(".gz").lower().endswith(".tsv")
    return parse_tsv(text, columns, header, source=path) if tsv else text


def decode_text(data: bytes, encoding: str, source: str) -> str:
    """Decode bytes; on failure say where (line and byte offset) and what to try."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        bad = data[e.start : e.start + 1].hex()
        raise ValueError(
            f"{source}: not valid {encoding} at line {line} (byte offset {e.start}, byte 0x{bad}); "
            "pass encoding=... (for example 'latin-1') if the file uses another encoding"
        ) from None


def parse_tsv(
    text: str, columns: int | None = None, header: bool = False, source: str = "<text>"
) -> list[tuple[str, ...]]:
    """Split TSV text into rows of ``columns`` fields; blank lines are skipped.

    >>> parse_tsv("a\\t1\\nb\\t2\\n")
    [('a', '1'), ('b', '2')]
    """
    rows = []
    lines = text.split("\n")
    for n, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        if (header and n == 1) or not line:
            continue
        fields = tuple(line.split("\t"))
        if columns is None:
            columns = len(fields)
        if len(fields) != columns:
            raise ValueError(
                f"{source}, line {n}: expected {columns} tab-separated fields, found "
                f"{len(fields)}: {line[:60]!r}"
            )
        rows.append(fields)
    return rows
