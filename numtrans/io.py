"""The one way numtrans writes a file: atomically.

    atomic_write(path, lambda tmp: save_file(tensors, tmp))
    atomic_write_text(path, json.dumps(config))

The data goes to a temporary file in the same directory, is flushed to disk (fsync), and is then
renamed over ``path`` in one step (``os.replace`` is atomic on POSIX and Windows). A crash, a
SIGKILL or a full disk therefore leaves either the old file or the new one, never half of one;
the temporary file is removed when writing fails. The file gets the permissions the umask gives
(``mkstemp`` alone would make it 0600).
"""

from __future__ import annotations

import json
import os
import tempfile


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)``, fsync the result, then move it to ``path`` in one step."""
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def read_json_object(path: str | os.PathLike, what: str = "a JSON object") -> dict:
    """A JSON file that must hold an object (a config): bad JSON or another type is a one-line
    ValueError naming the file."""
    with open(path, encoding="utf-8") as f:
        try:
            values = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{os.fspath(path)}: not valid JSON ({exc})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{os.fspath(path)}: {what}, got a {type(values).__name__}")
    return values


def remove_stale_temporaries(directory: str | os.PathLike) -> list[str]:
    """Delete ``.NAME.*.tmp`` files that a killed writer left in ``directory``; return their
    names. Only files matching this module's own pattern are touched."""
    removed = []
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        if name.startswith(".") and name.endswith(".tmp"):
            full = os.path.join(directory, name)
            if os.path.isfile(full):
                os.unlink(full)
                removed.append(name)
    return removed
