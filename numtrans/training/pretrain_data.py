"""The main job's data: the character streams, their batches, what identifies a corpus, and
whether ``out_dir`` may take a new run.

    text --CharTokenizer--> ids --(1 - val_fraction) / val_fraction split--> train / val ids
    get_batch(split, rng): B random windows of T + 1 ids -> x = window[:, :-1], y = window[:, 1:]

A checkpoint records ``data_fingerprint`` of its corpus; ``check_same_run`` refuses to resume it
on another model or (unless forced) another corpus. Split out of ``pretrain.py`` (which
re-exports these names) to keep each file short.
"""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np

from ..data import load_corpus
from ..tokenizers import CharTokenizer


def prepare_data(cfg):
    """Character tokenizer and the train/validation id streams of ``cfg.data`` (a
    ``PretrainConfig``: the last ``cfg.val_fraction`` is validation), and its fingerprint."""
    text = load_corpus(cfg.data)
    if not isinstance(text, str):
        raise ValueError(f"{cfg.data} is a table; pretraining needs plain text")
    if not text:
        raise ValueError(f"{cfg.data} is empty")
    tokenizer = CharTokenizer.from_text(text)
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
    n_train = int(len(ids) * (1 - cfg.val_fraction))
    return tokenizer, ids[:n_train], ids[n_train:], data_fingerprint(cfg.data, text)


def data_fingerprint(name: str, text: str) -> dict:
    """What identifies a corpus in a checkpoint: its name, its size and a hash of its first MB
    (hashing all of a large corpus on every resume would cost more than it tells)."""
    head = text.encode("utf-8")[: 1 << 20]
    return {
        "data": name,
        "characters": len(text),
        "sha256_first_mb": hashlib.sha256(head).hexdigest(),
    }


def check_same_run(state: dict, model_config: dict, fingerprint: dict, force: bool) -> None:
    """Refuse to resume a checkpoint of another model, or (unless ``force``) of another corpus:
    either would continue silently or fail deep inside ``load_state_dict``."""
    name = state.get("checkpoint", "the checkpoint")
    saved = state.get("model_config")
    if saved is not None:  # (checkpoints written before this check have neither entry)
        diff = [f"{k} {saved.get(k)!r} there, {v!r} now" for k, v in model_config.items()
                if k != "dropout" and saved.get(k) != v]  # fmt: skip
        if diff:
            raise ValueError(
                f"checkpoint {name} holds another model ({'; '.join(diff)}): resume with its "
                "settings, or start a new run in another --out-dir"
            )
    saved = state.get("data_fingerprint")
    if saved is not None and saved != fingerprint and not force:
        raise ValueError(
            f"checkpoint {name} was trained on other data ({saved['data']}, "
            f"{saved['characters']:,} characters) than {fingerprint['data']} "
            f"({fingerprint['characters']:,} characters): pass --force to continue on it on purpose"
        )


def make_batcher(train_ids: np.ndarray, val_ids: np.ndarray, block_size: int, batch_size: int):
    """``get_batch(split, rng)``: B random windows of T tokens and their shifted targets."""
    streams = {"train": train_ids, "val": val_ids}
    for split, ids in streams.items():
        if len(ids) <= block_size:
            raise ValueError(
                f"the {split} split has {len(ids)} tokens, too few for block_size {block_size}"
            )

    def get_batch(split: str, rng: np.random.Generator):
        ids = streams[split]
        starts = rng.integers(0, len(ids) - block_size, size=batch_size)
        window = ids[starts[:, None] + np.arange(block_size + 1)]  # (B, T + 1)
        return window[:, :-1], window[:, 1:]

    return get_batch


def check_fresh_run(out_dir: str, resume: bool, overwrite: bool) -> None:
    """A new run never lands silently on an old one: its model and its checkpoints would mix
    (rotation would keep the old run's later steps and delete the new run's own)."""
    ckpt = os.path.join(out_dir, "checkpoints")
    earlier = (
        ["model.safetensors"] if os.path.exists(os.path.join(out_dir, "model.safetensors")) else []
    )
    if os.path.isdir(ckpt) and any(not n.startswith(".") for n in os.listdir(ckpt)):
        earlier.append("checkpoints")  # (temp entries of a killed save do not count)
    if not earlier or resume:
        return
    if not overwrite:
        raise ValueError(
            f"out_dir {out_dir!r} holds an earlier run ({', '.join(earlier)}): pass --resume to "
            "continue it, --overwrite to replace it, or choose another --out-dir"
        )
    shutil.rmtree(os.path.join(out_dir, "checkpoints"), ignore_errors=True)
