"""Knowledge-base files: the passages a retriever searches.

Two formats, told apart by the first non-blank line:

* **plain text** — one passage per line (UTF-8); blank lines are skipped;
* **JSONL** — the first line starts with ``{``: every non-blank line is a JSON object with a
  string ``"text"`` field (other fields, such as ``"id"`` or ``"title"``, are ignored).

Lines are split on ``"\\n"`` only (``str.splitlines`` would also split inside a passage at
U+0085 or U+2028). Anything else (bytes that are not UTF-8, a NUL byte, a JSONL line that is
not an object with a "text" string, an empty file) is a one-line ValueError naming the file and
the line.
"""

from __future__ import annotations

import json
import os


def read_documents(path: str | os.PathLike) -> list[str]:
    """The passages of a knowledge-base file, in file order."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"knowledge-base file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    texts: list[str] = []
    jsonl = None
    for number, data in enumerate(lines, start=1):
        if b"\0" in data:
            raise ValueError(f"{path}:{number}: a NUL byte; a knowledge base is text or JSONL")
        try:
            line = data.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise ValueError(
                f"{path}:{number}: not UTF-8 text; a knowledge base is text or JSONL"
            ) from None
        if not line.strip():
            continue
        if jsonl is None:
            jsonl = line.lstrip().startswith("{")
        if not jsonl:
            texts.append(line.strip())
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(f'{path}:{number}: expected a JSON object with a "text" string')
        if not record["text"].strip():
            raise ValueError(f'{path}:{number}: empty "text"')
        texts.append(record["text"])
    if not texts:
        raise ValueError(f"{path}: no passages (the file is empty or blank)")
    return texts
