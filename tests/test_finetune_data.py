"""Reading (text, label) files for fine-tuning: formats, columns, line-numbered errors, labels.json."""

from __future__ import annotations

import numpy as np
import pytest

from numtrans.finetune.data import LabeledData, LabelMap, read_labeled


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_tsv_without_header(tmp_path):
    d = read_labeled(write(tmp_path, "a.tsv", "good film\tpos\n\nbad film\tneg\n"))
    assert d.texts == ["good film", "bad film"] and d.labels == ["pos", "neg"]
    assert d.lines == [1, 3]  # the blank line 2 is skipped, numbering is kept


def test_csv_with_header_quotes_and_named_columns(tmp_path):
    text = 'id,review,stars\n1,"Great, really great",5\n2,"Meh ""ok""",3\n'
    d = read_labeled(write(tmp_path, "a.csv", text), "review", "stars", task="regress")
    assert d.texts == ["Great, really great", 'Meh "ok"'] and d.labels == [5.0, 3.0]
    d = read_labeled(write(tmp_path, "b.csv", "text,label\nhi,1\n"))
    assert d.texts == ["hi"] and d.lines == [2]


def test_jsonl_and_bundled_corpus(tmp_path):
    d = read_labeled(
        write(tmp_path, "a.jsonl", '{"text": "x", "label": 1}\n{"text": "y", "label": 0}\n')
    )
    assert d.texts == ["x", "y"] and d.labels == ["1", "0"]
    uci = read_labeled("uci_sentiment")
    assert len(uci) == 3000 and set(uci.labels) == {"0", "1"} and uci.lines[0] == 2


@pytest.mark.parametrize(
    "name, text, task, message",
    [
        (
            "a.tsv",
            "good\t1\nbad\t0\textra\n",
            "classify",
            r"a.tsv, line 2: expected 2 fields, found 3",
        ),
        ("a.tsv", "good\t1\n\t0\n", "classify", r"line 2: empty"),
        ("a.tsv", "good\t1\nbad\t\n", "classify", r"line 2: missing label"),
        ("a.tsv", "good\t1\nbad\tlots\n", "regress", r"line 2: regression target 'lots'"),
        (
            "a.jsonl",
            '{"text": "a", "label": 1}\n{"text": "b", label: 0}\n',
            "classify",
            r"line 2: not valid JSON",
        ),
        (
            "a.jsonl",
            '{"text": "a", "label": 1}\n\n{"text": "b"}\n',
            "classify",
            r"line 3: no 'label' field",
        ),
        ("a.jsonl", "[1, 2]\n", "classify", r"line 1: expected a JSON object"),
        ("a.csv", "text,stars\nhi,1\n", "classify", r"no label column"),
        ("a.csv", 'text,label\n"unclosed,1\n', "classify", r"a.csv"),
        ("a.xml", "<x/>", "classify", r"unknown data format"),
    ],
)
def test_malformed_rows_name_their_line(tmp_path, name, text, task, message):
    with pytest.raises(ValueError, match=message):
        read_labeled(write(tmp_path, name, text), task=task)


def test_missing_file_and_plain_text_corpus(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_labeled(str(tmp_path / "nope.tsv"))
    with pytest.raises(ValueError, match="plain text"):
        read_labeled("tinyshakespeare")


def test_label_map_order_encode_and_round_trip(tmp_path):
    data = LabeledData(["a", "b", "c"], ["10", "2", "neg"], [1, 2, 3], "d.tsv")
    labels = LabelMap.fit(data.labels)
    assert labels.names == ["2", "10", "neg"]  # numbers in numeric order, then words
    np.testing.assert_array_equal(labels.encode(data), [1, 0, 2])
    labels.save(str(tmp_path), max_length=32)
    back, extra = LabelMap.load(str(tmp_path))
    assert back == labels and extra == {"max_length": 32}
    unseen = LabeledData(["x"], ["pos"], [7], "test.tsv")
    with pytest.raises(ValueError, match=r"test.tsv, line 7: label 'pos' is not one"):
        labels.encode(unseen)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LabelMap.fit(["1", "1"])
    assert LabelMap.fit([0.5, 1.5], "regress").num_labels == 1


def test_seeded_split_is_reproducible():
    d = LabeledData([str(i) for i in range(10)], ["0", "1"] * 5, list(range(1, 11)))
    a_train, a_val = d.split(0.2, seed=3)
    b_train, b_val = d.split(0.2, seed=3)
    assert a_val.texts == b_val.texts and len(a_val) == 2 and len(a_train) == 8
    assert sorted(a_train.texts + a_val.texts, key=int) == d.texts
