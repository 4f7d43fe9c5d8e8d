"""Checkpoints without pickle: NumPy arrays in safetensors files, everything else in JSON.

A checkpoint is a directory::

    step-000500/
        model.safetensors      the model's state_dict
        optimizer.safetensors  the optimiser's per-parameter state (moments, ...)
        state.json             step, RNG states, optimiser settings, scheduler, history, config

It is written into a temporary sibling directory first and renamed into place only when every
file is complete (``os.replace`` is atomic), and ``latest`` (a one-line text file, also replaced
atomically) names the newest one. A crash or Ctrl-C mid-write therefore never damages the last
good checkpoint. A checkpoint damaged some other way (a disk error, a file cut short by hand) is
skipped on resume, newest first, with a line saying which one and why.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from ..io import atomic_write_text


def _save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        return load_file(str(path))
    except Exception as exc:  # SafetensorError, OSError on a truncated header, ...
        raise ValueError(f"{path.name} is damaged or truncated ({exc})") from exc


def remove_stale(root: str | os.PathLike) -> list[str]:
    """Delete what a killed save left in ``root``: ``.step-NNNNNN.*`` directories (a checkpoint
    being written) and ``.latest.*.tmp`` files. Run at the start of a run and on resume."""
    root = Path(root)
    if not root.is_dir():
        return []
    removed = []
    for entry in root.iterdir():
        if entry.name.startswith(".step-") and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
        elif entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
            entry.unlink()
            removed.append(entry.name)
    return removed


def save_checkpoint(
    root: str | os.PathLike,
    step: int,
    model_state: dict[str, np.ndarray],
    optimizer_arrays: dict[str, np.ndarray],
    state: dict,
    keep: int = 2,
) -> Path:
    """Write ``root/step-NNNNNN`` atomically, point ``root/latest`` at it, keep ``keep`` newest."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    final = root / name
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        _save_arrays(tmp / "model.safetensors", model_state)
        _save_arrays(tmp / "optimizer.safetensors", optimizer_arrays)
        (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / "latest", name + "\n")
    old = sorted(p for p in root.glob("step-*") if p.is_dir() and p.name != name)
    for p in old[: max(0, len(old) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The directory named by ``root/latest``, or None if there is no checkpoint yet."""
    pointer = Path(root) / "latest"
    if not pointer.is_file():
        return None
    path = Path(root) / pointer.read_text(encoding="utf-8").strip()
    return path if path.is_dir() else None


def candidates(root: str | os.PathLike) -> list[Path]:
    """The checkpoints under ``root`` to try on resume: ``latest`` first, then newest first."""
    root = Path(root)
    steps = sorted((p for p in root.glob("step-*") if p.is_dir()), reverse=True)
    first = latest_checkpoint(root)
    return ([first] if first else []) + [p for p in steps if p != first]


def read_checkpoint(path: Path) -> tuple[dict, dict, dict]:
    """(model_state, optimizer_arrays, state) of one ``step-NNNNNN`` directory."""
    state_file = path / "state.json"
    if not state_file.is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint directory (no state.json)")
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"state.json is damaged ({exc})") from exc
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError("state.json is not a checkpoint state (no step)")
    return (
        _load_arrays(path / "model.safetensors"),
        _load_arrays(path / "optimizer.safetensors"),
        state,
    )


def load_checkpoint(path: str | os.PathLike, say=None) -> tuple[dict, dict, dict]:
    """Return (model_state, optimizer_arrays, state) from a checkpoint directory, or from the
    newest one under a checkpoint root that loads: a damaged one is skipped, and ``say`` (if
    given) is told which and why. ``state["checkpoint"]`` names the one loaded."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if (path / "state.json").is_file():  # one checkpoint, asked for by name: no fallback
        found = read_checkpoint(path)
        found[2]["checkpoint"] = path.name
        return found
    tried = candidates(path)
    if not tried:
        raise FileNotFoundError(f"{path} holds no checkpoint (no step-* directory)")
    reasons = []
    for candidate in tried:
        try:
            found = read_checkpoint(candidate)
        except (OSError, ValueError) as exc:
            reasons.append(f"{candidate.name}: {exc}")
            if say is not None:
                say(f"skipped checkpoint {candidate.name}: {exc}")
            continue
        found[2]["checkpoint"] = candidate.name
        return found
    raise ValueError(f"no checkpoint in {path} loads ({'; '.join(reasons)})")
