"""The main job: pretrain a character-level GPT by next-token prediction, then sample from it.

    text --CharTokenizer--> ids --90/10 split--> random (B, T) windows x, y = x shifted by one
    GPT(x) -> logits (B, T, V);  loss = mean cross-entropy(logits, y)   (nats per character)
    AdamW + linear warmup + cosine decay, gradient clipping, evaluation every N steps

Presets (``PRESETS``) pick sizes; every field of ``PretrainConfig`` can be overridden.
``shakespeare`` is nanoGPT's documented CPU configuration for Shakespeare characters (4 layers,
4 heads, 128-dim, block 64, batch 12, 2,000 iterations, dropout 0), which reaches a validation
loss of about 1.88 in nanoGPT.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass

import numpy as np

from ..io import atomic_write_text, read_json_object, remove_stale_temporaries
from ..training.checkpoint import latest_checkpoint, remove_stale
from ..validation import (
    ANY_INT,
    FRACTION,
    NONNEG_FLOAT,
    NONNEG_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY,
    TEXT,
    check_output_dir,
    check_settings,
    one_of,
    optional,
)


@dataclass
class PretrainConfig:
    # data
    data: str = "tinyshakespeare"  # a bundled corpus name or a path to a UTF-8 text file
    val_fraction: float = 0.1  # the last 10% is validation (nanoGPT's split)
    out_dir: str = "runs/shakespeare-char"
    # model (GPTConfig)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = True
    pos: str = "learned"
    # optimisation
    batch_size: int = 12
    max_steps: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    grad_accum_steps: int = 1
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_batches: int = 20
    log_interval: int = 50
    patience: int | None = None
    checkpoint: bool = True
    on_nonfinite: str = "stop"  # a NaN/inf loss: "stop" with an error, or "skip" the step
    seed: int = 1337
    progress: bool = True
    # the sample printed at the end
    sample_tokens: int = 300
    temperature: float = 0.8
    top_k: int | None = None


PRESETS: dict[str, dict] = {
    # about two minutes on a 2-core CPU: the loss falls from 4.2 to about 2.2
    "quick": {
        "max_steps": 500,
        "eval_interval": 100,
        "log_interval": 25,
        "warmup_steps": 50,
        "out_dir": "runs/quick",
    },
    # nanoGPT's CPU configuration (see the module docstring)
    "shakespeare": {},
    # the best validation loss we found for half an hour on a 2-core CPU (see README): nanoGPT's
    # small model with 5x the tokens per step (32 x 128), rotary positions (they learn far faster than
    # learned ones: 2.18 vs 2.49 after 100 steps) and a high learning rate
    "large": {
        "block_size": 128,
        "batch_size": 32,
        "pos": "rope",
        "max_steps": 1400,
        "learning_rate": 6e-3,
        "min_lr": 6e-4,
        "warmup_steps": 100,
        "eval_interval": 200,
        "out_dir": "runs/large",
    },
}


def make_config(
    preset: str = "quick", overrides: dict | None = None, config_file: str | None = None
) -> PretrainConfig:
    """Preset, then a JSON file, then ``overrides`` (later wins). Unknown keys are errors."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    values = dict(PRESETS[preset])
    if config_file:
        if not os.path.isfile(config_file):
            raise FileNotFoundError(f"config file not found: {config_file}")
        values.update(
            read_json_object(config_file, "a config file must be a JSON object of settings")
        )
    values.update(overrides or {})
    fields = {f.name: f for f in dataclasses.fields(PretrainConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(fields)}")
    cfg = PretrainConfig(**values)
    validate(cfg)
    return cfg


# What each setting may be (numtrans/validation.py's rules: type(s), a test, the words for it).
_RULES = {
    "val_fraction": FRACTION,
    "n_layer": POSITIVE_INT,
    "n_head": POSITIVE_INT,
    "n_embd": POSITIVE_INT,
    "block_size": POSITIVE_INT,
    "dropout": PROBABILITY,
    "batch_size": POSITIVE_INT,
    "max_steps": POSITIVE_INT,
    "learning_rate": ((int, float), lambda v: 0 < v < 1e3, "a number > 0 (and < 1000)"),
    "min_lr": NONNEG_FLOAT,
    "warmup_steps": NONNEG_INT,
    "weight_decay": NONNEG_FLOAT,
    "beta1": PROBABILITY,
    "beta2": PROBABILITY,
    "grad_clip": NONNEG_FLOAT,
    "grad_accum_steps": POSITIVE_INT,
    "eval_interval": POSITIVE_INT,
    "eval_batches": POSITIVE_INT,
    "log_interval": POSITIVE_INT,
    "sample_tokens": NONNEG_INT,
    "temperature": POSITIVE_FLOAT,
    "seed": ANY_INT,
    "data": TEXT,
    "out_dir": TEXT,
    "pos": TEXT,
    "on_nonfinite": one_of("stop", "skip"),
    "top_k": optional(POSITIVE_INT),
    "patience": optional(POSITIVE_INT),
}


def validate(cfg: PretrainConfig) -> None:
    """Check every setting once, where the config is built (CLI, config file and Python alike):
    a bad one raises ValueError naming the field, the value and what is allowed."""
    check_settings(cfg, _RULES)
    if cfg.n_embd % cfg.n_head:
        raise ValueError(f"n_embd={cfg.n_embd} must be divisible by n_head={cfg.n_head}")
    check_output_dir(cfg.out_dir)


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


def prepare_data(cfg: PretrainConfig):
    """Character tokenizer and the train/validation id streams."""
    from ..data import load_corpus
    from ..tokenizers import CharTokenizer

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


def build(cfg: PretrainConfig, vocab_size: int):
    """The GPT, its AdamW optimiser and the warmup + cosine schedule."""
    from .. import manual_seed
    from ..models.gpt import GPT, GPTConfig
    from ..optim import AdamW, WarmupCosineLR, param_groups_for_weight_decay

    manual_seed(cfg.seed)
    model = GPT(
        GPTConfig(
            block_size=cfg.block_size,
            vocab_size=vocab_size,
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            n_embd=cfg.n_embd,
            dropout=cfg.dropout,
            bias=cfg.bias,
            pos=cfg.pos,
        )
    )
    groups = param_groups_for_weight_decay(model.named_parameters(), cfg.weight_decay)
    optimizer = AdamW(groups, lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    # a short run (e.g. --max-steps 20 with the quick preset) keeps its warmup shorter than itself
    warmup = min(cfg.warmup_steps, max(cfg.max_steps - 1, 0))
    scheduler = WarmupCosineLR(
        optimizer, warmup_steps=warmup, total_steps=cfg.max_steps, min_lr=cfg.min_lr
    )
    return model, optimizer, scheduler


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


def run(
    cfg: PretrainConfig, resume: bool = False, say=print, overwrite: bool = False, force=False
) -> dict:
    """Train, save ``out_dir`` (model, tokenizer, history), print and return a sample.
    ``resume`` continues from the newest checkpoint that loads; ``force`` lets it continue on a
    different corpus (same vocabulary) on purpose."""
    from ..generation.generate import generate
    from ..training.trainer import TrainConfig, Trainer

    check_fresh_run(cfg.out_dir, resume, overwrite)
    if force and not resume:
        raise ValueError("--force only applies with --resume (to continue on another corpus)")
    tokenizer, train_ids, val_ids, fingerprint = prepare_data(cfg)
    say(
        f"data: {cfg.data}: {len(train_ids):,} train / {len(val_ids):,} val characters, "
        f"vocabulary {tokenizer.vocab_size}"
    )
    model, optimizer, scheduler = build(cfg, tokenizer.vocab_size)
    say(
        f"model: GPT {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} wide, "
        f"block {cfg.block_size}: {model.num_params():,} parameters"
    )
    train_cfg = TrainConfig(
        max_steps=cfg.max_steps,
        eval_interval=cfg.eval_interval,
        eval_batches=cfg.eval_batches,
        log_interval=cfg.log_interval,
        grad_accum_steps=cfg.grad_accum_steps,
        grad_clip=cfg.grad_clip,
        patience=cfg.patience,
        seed=cfg.seed,
        progress=cfg.progress,
        on_nonfinite=cfg.on_nonfinite,
        checkpoint_dir=os.path.join(cfg.out_dir, "checkpoints") if cfg.checkpoint else None,
    )
    trainer = Trainer(
        model,
        optimizer,
        make_batcher(train_ids, val_ids, cfg.block_size, cfg.batch_size),
        train_cfg,
        scheduler=scheduler,
        extra_state={
            "pretrain_config": dataclasses.asdict(cfg),
            "model_config": dataclasses.asdict(model.config),
            "data_fingerprint": fingerprint,
        },
    )
    # what a killed earlier run of this directory left half-written (temp files, a checkpoint
    # directory being written) is removed first: it is never a valid state to continue from
    stale = remove_stale_temporaries(cfg.out_dir)
    if train_cfg.checkpoint_dir:
        stale += remove_stale(train_cfg.checkpoint_dir)
    if stale:
        say(
            f"removed {len(stale)} temporary file(s) left by an interrupted run: {', '.join(stale)}"
        )
    if resume:
        model_config = dataclasses.asdict(model.config)

        def same_run(state):  # before any weight is loaded
            check_same_run(state, model_config, fingerprint, force)

        trainer.resume(say=say, check_state=same_run)
        say(f"resumed from step {trainer.step}")
    history = trainer.train()

    try:
        os.makedirs(cfg.out_dir, exist_ok=True)
        model.save_pretrained(cfg.out_dir)
        tokenizer.save(os.path.join(cfg.out_dir, "tokenizer.json"))
        atomic_write_text(os.path.join(cfg.out_dir, "history.json"), json.dumps(history))
    except OSError as exc:  # a full disk: every write is atomic, so say what is still there
        kept = latest_checkpoint(train_cfg.checkpoint_dir) if train_cfg.checkpoint_dir else None
        kept = f"the checkpoint {kept} is kept (--resume continues from it)" if kept else (
            "no checkpoint was written")  # fmt: skip
        raise OSError(exc.errno, f"could not save the model in {cfg.out_dir} "
                      f"({exc.strerror or exc}); {kept}") from exc  # fmt: skip
    _plot(history, cfg.out_dir)
    say(f"best validation loss {trainer.best_val:.4f} nats/char; model saved to {cfg.out_dir}")

    prompt = np.array([[start_token(tokenizer)]])
    out = generate(
        model, prompt, cfg.sample_tokens, temperature=cfg.temperature, top_k=cfg.top_k, rng=cfg.seed
    )
    sample = tokenizer.decode(out[0, 1:].tolist())
    say("---- sample ----\n" + sample + "\n----------------")
    return {
        "history": history,
        "best_val_loss": trainer.best_val,
        "sample": sample,
        "steps": trainer.step,
    }


def start_token(tokenizer) -> int:
    """Where unprompted samples start: a newline if the corpus has one, else the first token."""
    return tokenizer.get_vocab().get("\n", 0)


def _plot(history: dict, out_dir: str) -> None:
    try:
        from ..viz import plot_history
    except ImportError:  # matplotlib is optional
        return
    try:
        plot_history(history, path=os.path.join(out_dir, "loss.png"))
    except ImportError:
        pass
