"""Issue 14, items 7 and 12: every file goes through one atomic-write helper (temp file in the
same directory, fsync, rename), with the umask's permissions, and leaves no temp file behind."""

import json
import os
import stat

import pytest

from numtrans.io import atomic_write, atomic_write_text, remove_stale_temporaries


def test_text_lands_whole_with_umask_permissions(tmp_path):
    path = tmp_path / "a.json"
    old = os.umask(0o022)
    try:
        atomic_write_text(path, json.dumps({"x": 1}))
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == {"x": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"old")

    def broken(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_stale_temporaries_of_killed_writers_are_removed(tmp_path):
    (tmp_path / ".tokenizer.json.abc123.tmp").write_text("partial")
    (tmp_path / "keep.txt").write_text("x")
    assert remove_stale_temporaries(tmp_path) == [".tokenizer.json.abc123.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_saved_model_files_are_not_0600(tmp_path):
    from numtrans.models.gpt import GPT, GPTConfig

    old = os.umask(0o022)
    try:
        GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4)).save_pretrained(
            tmp_path
        )
    finally:
        os.umask(old)
    for name in ("config.json", "model.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
