"""Labelled text for fine-tuning: (text, label) rows from TSV, CSV or JSONL files.

    rows = read_labeled("reviews.csv")               # LabeledData(texts, labels, lines)
    rows = read_labeled("uci_sentiment")             # a bundled corpus by name
    labels = LabelMap.fit(rows.labels)                # "neg", "pos" -> 0, 1 (saved as labels.json)

File formats (chosen by the extension):

* ``.tsv``  tab-separated, no quoting;  ``.csv``  comma-separated, RFC-4180 quoting;
* ``.jsonl`` (or ``.json``) one JSON object a line: ``{"text": "...", "label": "pos"}``.

Columns: TSV/CSV files may start with a header naming the columns; then ``text``/``sentence``
and ``label`` (any case) are found by name, or give ``text_column``/``label_column`` (a name or
a 0-based index). A file without a header has two columns (text, label) unless told otherwise.
Every malformed row (wrong number of fields, empty text, a missing label, invalid JSON, a
non-numeric regression target) raises ``ValueError`` naming the file and its line number.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass

import numpy as np

from ..io import atomic_write_text

LABELS_FILE = "labels.json"
TEXT_NAMES = ("text", "sentence", "review", "document")
LABEL_NAMES = ("label", "labels", "target", "score")
TASKS = ("classification", "regression")


@dataclass
class LabeledData:
    texts: list[str]
    labels: list  # strings (classification) or floats (regression)
    lines: list[int]  # the source line of each row, for error messages
    source: str = "<data>"

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index) -> LabeledData:
        pick = lambda xs: [xs[i] for i in index]
        return LabeledData(pick(self.texts), pick(self.labels), pick(self.lines), self.source)

    def split(self, val_fraction: float, seed: int = 0) -> tuple[LabeledData, LabeledData]:
        """A seeded shuffled split: (train, validation)."""
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        order = np.random.default_rng(seed).permutation(len(self))
        n_val = max(1, int(round(len(self) * val_fraction)))
        return self.subset(order[n_val:]), self.subset(order[:n_val])


def check_task(task: str) -> str:
    task = {"classify": "classification", "regress": "regression"}.get(task, task)
    if task not in TASKS:
        raise ValueError(f"task must be 'classify' or 'regress', got {task!r}")
    return task


def read_labeled(
    path: str, text_column=None, label_column=None, task: str = "classification"
) -> LabeledData:
    """Read (text, label) rows; labels stay strings (classification) or become floats."""
    from ..data.corpus import CORPORA, corpus_info, load_corpus

    task = check_task(task)
    if path in CORPORA:  # a bundled table, e.g. uci_sentiment (source, label, sentence)
        columns = corpus_info(path)["columns"]
        if columns is None:
            raise ValueError(f"{path} is plain text, not (text, label) rows")
        rows = [(n + 2, r) for n, r in enumerate(load_corpus(path))]  # line 1 is the header
        return _collect([columns, *[r for _, r in rows]], [1] + [n for n, _ in rows], path,
                        text_column, label_column, task, has_header=True)  # fmt: skip
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path}")
    with open(path, encoding="utf-8", newline="") as f:
        try:
            text = f.read()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not valid UTF-8 ({e.reason})") from None
    ext = os.path.splitext(path)[1].lower()
    if ext in (".jsonl", ".json"):
        return _read_jsonl(text, path, text_column or "text", label_column or "label", task)
    if ext not in (".tsv", ".csv", ".txt"):
        raise ValueError(f"{path}: unknown data format {ext!r}; use .tsv, .csv or .jsonl")
    if ext == ".csv":
        reader = csv.reader(io.StringIO(text))
    else:
        reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    rows, lines = [], []
    try:
        for row in reader:
            if row and any(field.strip() for field in row):
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as e:
        raise ValueError(f"{path}, line {reader.line_num}: {e}") from None
    return _collect(rows, lines, path, text_column, label_column, task, has_header=None)


def _find(header: list[str], wanted, defaults, what: str, source: str) -> int:
    """The index of a column given by name or index (or found among ``defaults``)."""
    if wanted is not None and str(wanted).isdigit():
        return int(wanted)
    lowered = [h.strip().lower() for h in header]
    for name in [wanted] if wanted is not None else defaults:
        if str(name).lower() in lowered:
            return lowered.index(str(name).lower())
    raise ValueError(f"{source}: no {what} column {wanted or defaults} in the header {header}")


def _collect(rows, lines, source, text_column, label_column, task, has_header) -> LabeledData:
    if not rows:
        raise ValueError(f"{source}: no rows")
    first = [h.strip().lower() for h in rows[0]]
    named = [c for c in (text_column, label_column) if c is not None and not str(c).isdigit()]
    if has_header is None:  # a header names a known column (or a column asked for)
        has_header = any(n.lower() in first for n in named + list(TEXT_NAMES + LABEL_NAMES))
    if has_header:
        t = _find(rows[0], text_column, TEXT_NAMES, "text", source)
        y = _find(rows[0], label_column, LABEL_NAMES, "label", source)
        width, rows, lines = len(rows[0]), rows[1:], lines[1:]
    else:
        if named:
            raise ValueError(f"{source}: columns {named} given by name, but there is no header")
        width = len(rows[0])
        t = int(text_column) if text_column is not None else 0
        y = int(label_column) if label_column is not None else 1
        if width < 2:
            raise ValueError(f"{source}, line {lines[0]}: expected (text, label), found 1 field")
    if max(t, y) >= width:
        raise ValueError(f"{source}: column {max(t, y)} does not exist ({width} columns)")
    data = LabeledData([], [], [], source)
    for row, n in zip(rows, lines):
        if len(row) != width:
            raise ValueError(
                f"{source}, line {n}: expected {width} fields, found {len(row)}: {row!r:.80}"
            )
        _append(data, row[t], row[y], n, task)
    return data


def _read_jsonl(text, source, text_key, label_key, task) -> LabeledData:
    data = LabeledData([], [], [], source)
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}, line {n}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(
                f"{source}, line {n}: expected a JSON object, got {type(obj).__name__}"
            )
        for key in (text_key, label_key):
            if key not in obj:
                raise ValueError(f"{source}, line {n}: no {key!r} field (fields: {sorted(obj)})")
        _append(data, obj[text_key], obj[label_key], n, task)
    if not data.texts:
        raise ValueError(f"{source}: no rows")
    return data


def _append(data: LabeledData, text, label, n: int, task: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{data.source}, line {n}: empty or non-text text field {text!r}")
    if label is None or (isinstance(label, str) and not label.strip()):
        raise ValueError(f"{data.source}, line {n}: missing label")
    if task == "regression":
        try:
            label = float(label)
        except (TypeError, ValueError):
            raise ValueError(
                f"{data.source}, line {n}: regression target {label!r} is not a number"
            ) from None
        if not np.isfinite(label):
            raise ValueError(f"{data.source}, line {n}: regression target {label} is not finite")
    else:
        label = str(label).strip()
    data.texts.append(text)
    data.labels.append(label)
    data.lines.append(n)


@dataclass
class LabelMap:
    """Class names <-> ids (``names[i]`` is class ``i``); ``names`` is None for regression."""

    task: str = "classification"
    names: list[str] | None = None

    @classmethod
    def fit(cls, labels, task: str = "classification") -> LabelMap:
        """Number the distinct labels in sorted order ("2" before "10", numbers before words)."""
        task = check_task(task)
        if task == "regression":
            return cls(task, None)
        names = sorted({str(v) for v in labels}, key=_natural)
        if len(names) < 2:
            raise ValueError(f"classification needs at least 2 classes, found {names}")
        return cls(task, names)

    @property
    def num_labels(self) -> int:
        return 1 if self.names is None else len(self.names)

    def encode(self, data: LabeledData) -> np.ndarray:
        """Labels as class ids (int64) or targets (float32); unknown classes name their line."""
        if self.names is None:
            return np.asarray(data.labels, dtype=np.float32)
        index = {name: i for i, name in enumerate(self.names)}
        for label, n in zip(data.labels, data.lines):
            if label not in index:
                raise ValueError(
                    f"{data.source}, line {n}: label {label!r} is not one of the model's "
                    f"classes {self.names}"
                )
        return np.array([index[label] for label in data.labels], dtype=np.int64)

    def save(self, directory: str, **extra) -> None:
        atomic_write_text(
            os.path.join(directory, LABELS_FILE),
            json.dumps({"task": self.task, "labels": self.names, **extra}, indent=1) + "\n",
        )

    @classmethod
    def load(cls, directory: str) -> tuple[LabelMap, dict]:
        """``(label_map, extra settings)`` from ``labels.json``."""
        path = os.path.join(directory, LABELS_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no {LABELS_FILE} in {directory!r}: not a fine-tuned model")
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        task, names = check_task(values.pop("task")), values.pop("labels")
        return cls(task, names), values


def _natural(name: str):
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)
