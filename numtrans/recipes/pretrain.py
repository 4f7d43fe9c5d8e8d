"""The main job: pretrain a character-level GPT by next-token prediction, then sample from it.

    text --CharTokenizer--> ids --90/10 split--> random (B, T) windows x, y = x shifted by one
    GPT(x) -> logits (B, T, V);  loss = mean cross-entropy(logits, y)   (nats per character)
    AdamW + linear warmup + cosine decay, gradient clipping, evaluation every N steps

Presets (``PRESETS``) pick sizes; every field of ``PretrainConfig`` can be overridden.
``shakespeare`` is nanoGPT's documented CPU configuration for Shakespeare characters (4 layers,
4 heads, 128-dim, block 64, batch 12, 2,000 iterations, dropout 0), which reaches a validation
loss of about 1.88 in nanoGPT.

Data parallel: ``mpirun -n P numtrans pretrain ... --ddp`` (``run(cfg, ddp=True)``) trains the
same run over P processes (``numtrans.distributed``): ``batch_size`` stays the global batch, each
rank trains on its ``batch_size / P`` rows, rank 0 alone prints and writes, and the checkpoints
are those of a one-process run (resume on any P that divides ``batch_size``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

import numpy as np

from .. import manual_seed
from ..distributed import (
    DistributedTrainer,
    abort_on_error,
    check_on_main,
    check_shardable,
    init_world,
    quiet,
    quiet_unless_main,
    require_ddp,
    shard_batcher,
    zero_says,
)
from ..generation.generate import generate
from ..io import atomic_write_text, read_json_object, remove_stale_temporaries
from ..models.gpt import GPT, GPTConfig
from ..optim import AdamW, WarmupCosineLR, param_groups_for_weight_decay
from ..training.checkpoint import latest_checkpoint, remove_stale
from ..training.pretrain_data import (
    check_fresh_run,
    check_same_run,
    make_batcher,
    prepare_data,
)
from ..training.trainer import TrainConfig, Trainer
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
    # data parallel (``run(..., ddp=True)``, ``mpirun -n P numtrans pretrain --ddp``): batch_size is
    # the global batch, split over the P ranks; gradients travel in buckets of this many MB
    ddp_bucket_mb: float = 25.0
    # ZeRO stage (distributed/zero.py): true or 1 = each rank keeps 1/P of AdamW's moments,
    # 2 = and 1/P of the gradients (zero2.py); false or 0 = plain DDP
    ddp_zero: bool | int = False
    # the sample printed at the end
    sample_tokens: int = 300
    temperature: float = 0.8
    top_k: int | None = None


PRESETS: dict[str, dict] = {
    # the README's first command: under 2 minutes of CPU on one core; the validation loss falls
    # from 4.2 to below 2.0 (1.96 measured) with what made "large" good, rotary positions and a
    # high learning rate (with learned positions and lr 1e-3 the same 500 steps ended at 2.28)
    "quick": {
        "pos": "rope",
        "learning_rate": 3e-3,
        "min_lr": 3e-4,
        "max_steps": 700,
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
    "ddp_bucket_mb": POSITIVE_FLOAT,
    "ddp_zero": ((bool, int), lambda v: v in (0, 1, 2), "true, false, 0, 1 or 2 (a ZeRO stage)"),
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


def build(cfg: PretrainConfig, vocab_size: int):
    """The GPT, its AdamW optimiser and the warmup + cosine schedule."""
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


def run(
    cfg: PretrainConfig,
    resume: bool = False,
    say=print,
    overwrite: bool = False,
    force=False,
    ddp: bool = False,
) -> dict:
    """Train, save ``out_dir`` (model, tokenizer, history), print and return a sample.
    ``resume`` continues from the newest checkpoint that loads; ``force`` lets it continue on a
    different corpus (same vocabulary) on purpose. ``ddp`` trains data-parallel over the ranks
    that ``mpirun`` started (``numtrans.distributed``): ``batch_size`` is the global batch, each
    rank trains on its ``batch_size / P`` rows, and rank 0 alone prints and writes files."""
    if not ddp:
        require_ddp(cfg.ddp_zero, ddp, f"--ddp_zero={str(cfg.ddp_zero).lower()}", "pretrain")
        check_start(cfg, resume, overwrite, force)
        return _run(cfg, resume, say, force, world=None)

    world = init_world()

    data = []

    def check():  # on rank 0, which also clears out_dir for --overwrite; the others wait for it
        check_shardable(cfg.batch_size, world.size)
        check_start(cfg, resume, overwrite, force)
        data.append(prepare_data(cfg))  # a missing or empty corpus: said once, not per rank

    check_on_main(world, check)
    with abort_on_error(world):  # one rank failing stops the job instead of hanging the others
        if world.is_main:
            return _run(cfg, resume, say, force, world, data[0])
        with quiet_unless_main(world):  # rank 0 prints for the job
            return _run(dataclasses.replace(cfg, progress=False), resume, quiet, force, world)


def check_start(cfg: PretrainConfig, resume: bool, overwrite: bool, force: bool) -> None:
    """The checks before anything is read: the flags agree, ``out_dir`` may be used."""
    if force and not resume:
        raise ValueError("--force only applies with --resume (to continue on another corpus)")
    check_fresh_run(cfg.out_dir, resume, overwrite)


def _run(cfg: PretrainConfig, resume, say, force, world, data=None) -> dict:
    """``run`` in one process (``world=None``) or as one rank of a data-parallel job;
    ``data``: what ``prepare_data(cfg)`` returned, if it was called already."""
    main = world is None or world.is_main
    tokenizer, train_ids, val_ids, fingerprint = data or prepare_data(cfg)
    say(
        f"data: {cfg.data}: {len(train_ids):,} train / {len(val_ids):,} val characters, "
        f"vocabulary {tokenizer.vocab_size}"
    )
    model, optimizer, scheduler = build(cfg, tokenizer.vocab_size)
    say(
        f"model: GPT {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} wide, "
        f"block {cfg.block_size}: {model.num_params():,} parameters"
    )
    train_cfg = TrainConfig.from_job(  # max_steps, eval_interval, grad_clip, seed, ... by name
        cfg, checkpoint_dir=os.path.join(cfg.out_dir, "checkpoints") if cfg.checkpoint else None
    )
    get_batch = make_batcher(train_ids, val_ids, cfg.block_size, cfg.batch_size)
    extra = {
        "pretrain_config": dataclasses.asdict(cfg),
        "model_config": dataclasses.asdict(model.config),
        "data_fingerprint": fingerprint,
    }
    if world is None:
        trainer = Trainer(model, optimizer, get_batch, train_cfg, scheduler=scheduler,
                          extra_state=extra)  # fmt: skip
    else:
        say(f"data parallel: {world.size} ranks x {cfg.batch_size // world.size} rows of the "
            f"global batch of {cfg.batch_size}"
            + zero_says(cfg.ddp_zero))  # fmt: skip
        trainer = DistributedTrainer(
            model, optimizer, shard_batcher(get_batch, world.rank, world.size), train_cfg,
            scheduler=scheduler, extra_state={**extra, "world_size": world.size},
            world=world, bucket_mb=cfg.ddp_bucket_mb, zero=cfg.ddp_zero,
        )  # fmt: skip
    # what a killed earlier run of this directory left half-written (temp files, a checkpoint
    # directory being written) is removed first: it is never a valid state to continue from
    stale = remove_stale_temporaries(cfg.out_dir) if main else []
    if train_cfg.checkpoint_dir and main:
        stale += remove_stale(train_cfg.checkpoint_dir)
    if stale:
        say(
            f"removed {len(stale)} temporary file(s) left by an interrupted run: {', '.join(stale)}"
        )
    if world is not None:
        world.barrier()  # every rank reads the checkpoints only after rank 0 tidied them
    if resume:
        model_config = dataclasses.asdict(model.config)

        def same_run(state):  # before any weight is loaded
            check_same_run(state, model_config, fingerprint, force)

        trainer.resume(say=say, check_state=same_run)
        say(f"resumed from step {trainer.step}")
    if world is not None:  # rank 0's parameters everywhere, then every rank's hash compared
        trainer.synchronize(
            f"after resuming from step {trainer.step}" if resume else "at the start"
        )
    history = trainer.train()
    if not main:  # rank 0 writes the model and prints the sample
        return {"history": history, "best_val_loss": trainer.best_val, "sample": None,
                "steps": trainer.step}  # fmt: skip

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
