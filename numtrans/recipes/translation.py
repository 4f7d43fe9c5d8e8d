"""Train an English -> Chinese Transformer on the Tatoeba pairs, as in "Attention Is All You Need".

    pairs --split by English sentence--> train / valid / test
    English --byte-level BPE--> src ids + <eos>      Chinese --characters--> <bos> + tgt ids
    Seq2SeqTransformer(src, tgt) -> logits (B, T, V)
    loss = cross_entropy(logits, labels, label_smoothing=0.1)     (labels = tgt shifted left)
    Adam(betas=(0.9, 0.98), eps=1e-9) with the inverse-square-root warm-up (NoamLR):
        lr(s) = lr_factor * d_model**-0.5 * min(s**-0.5, s * warmup_steps**-1.5)

Label smoothing is used for training only: the validation loss is the plain cross-entropy
(nats per Chinese character). Presets (``PRESETS``) pick the sizes; every field of
:class:`TranslationConfig` can be overridden (``numtrans train-translation --key=value``).
``time_limit`` (minutes) stops training on the clock instead of a step count: the schedule does
not depend on the total number of steps, so stopping anywhere is fine.

Data parallel (``mpirun -n P numtrans train-translation --ddp``, ``run(cfg, world=...)``): rank 0
prepares the data (splits, tokenizers) and sends it to the others; each rank trains on its rows
of every token-budgeted batch, its loss weighted by its share of the batch's target tokens (the
loss is a mean over them); rank 0 alone decides when the time limit is up, saves and scores.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass

from .. import manual_seed
from ..data import load_corpus
from ..distributed import DistributedTrainer, labelled_tokens, quiet, shard_batcher, zero_says
from ..functional import cross_entropy
from ..io import atomic_write_text
from ..models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from ..optim import Adam, NoamLR
from ..training.trainer import TrainConfig, Trainer
from ..translation.data import BucketBatcher, make_dataset, make_tokenizers, split_pairs
from ..translation.translate import Translator
from ..validation import (
    ANY_INT,
    BOOL,
    FRACTION,
    NONNEG_FLOAT,
    NONNEG_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY,
    TEXT,
    check_output_dir,
    check_settings,
    optional,
)


@dataclass
class TranslationConfig:
    # data
    data: str = "tatoeba_cmn_eng"  # a bundled corpus name or a .tsv of (source, target) rows
    out_dir: str = "runs/translation"
    max_pairs: int | None = None  # keep the first N rows (Tatoeba is ordered short to long)
    valid_fraction: float = 0.05
    test_fraction: float = 0.05
    split_seed: int = 0
    src_vocab_size: int = 4000  # English byte-level BPE
    tgt_min_freq: int = 1  # Chinese characters seen fewer times become <unk>
    max_length: int = 64  # tokens per side, <bos>/<eos> included
    # model (Seq2SeqConfig); sized for a 2-core CPU (see benchmarks/translation.py)
    d_model: int = 128
    nhead: int = 4
    num_encoder_layers: int = 3
    num_decoder_layers: int = 3
    dim_feedforward: int = 512
    dropout: float = 0.1
    norm_first: bool = False  # post-norm, as in the paper
    tie_generator: bool = True  # output projection = target embedding (section 3.4)
    # optimisation
    max_tokens: int = 2000  # padded source + target tokens per batch (about 90 sentences)
    max_steps: int = 20000
    time_limit: float | None = None  # minutes of training; None = max_steps decides
    warmup_steps: int = 400
    lr_factor: float = 0.5  # peak lr = lr_factor / sqrt(d_model * warmup_steps) = 2.2e-3
    label_smoothing: float = 0.1
    grad_clip: float | None = 1.0
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_batches: int = 10
    log_interval: int = 50
    checkpoint: bool = False
    seed: int = 1337
    progress: bool = True
    # decoding defaults saved with the model, and the test BLEU at the end
    beam_size: int = 4
    length_penalty: float = 1.0  # GNMT alpha; on validation 0.6 -> 1.0 gained 0.4 BLEU
    bleu_sentences: int | None = 0  # test sentences to score at the end (None = all, 0 = none)

    def __post_init__(self):
        check_settings(self, _RULES)
        if self.d_model % self.nhead:
            raise ValueError(f"d_model={self.d_model} must be divisible by nhead={self.nhead}")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"valid_fraction={self.valid_fraction} + test_fraction={self.test_fraction} "
                "leaves no training pairs: their sum must be below 1"
            )
        if self.max_length < 3:  # <bos> + one token + <eos>
            raise ValueError(f"setting max_length={self.max_length} is invalid: it must be >= 3")


_RULES = {
    "data": TEXT,
    "out_dir": TEXT,
    "max_pairs": optional(POSITIVE_INT),
    "valid_fraction": FRACTION,
    "test_fraction": FRACTION,
    "split_seed": ANY_INT,
    "src_vocab_size": POSITIVE_INT,
    "tgt_min_freq": POSITIVE_INT,
    "max_length": POSITIVE_INT,
    "d_model": POSITIVE_INT,
    "nhead": POSITIVE_INT,
    "num_encoder_layers": POSITIVE_INT,
    "num_decoder_layers": POSITIVE_INT,
    "dim_feedforward": POSITIVE_INT,
    "dropout": PROBABILITY,
    "norm_first": BOOL,
    "tie_generator": BOOL,
    "max_tokens": POSITIVE_INT,
    "max_steps": POSITIVE_INT,
    "time_limit": optional(POSITIVE_FLOAT),
    "warmup_steps": POSITIVE_INT,  # the inverse-sqrt schedule divides by it
    "lr_factor": POSITIVE_FLOAT,
    "label_smoothing": PROBABILITY,
    "grad_clip": optional(POSITIVE_FLOAT),
    "eval_interval": POSITIVE_INT,
    "eval_batches": POSITIVE_INT,
    "log_interval": POSITIVE_INT,
    "checkpoint": BOOL,
    "seed": ANY_INT,
    "progress": BOOL,
    "beam_size": POSITIVE_INT,
    "length_penalty": NONNEG_FLOAT,
    "bleu_sentences": optional(NONNEG_INT),
}


PRESETS: dict[str, dict] = {
    # seconds: 600 short pairs, a tiny model; learns a few phrases, for tests and the tutorial
    "tiny": {
        "max_pairs": 600, "valid_fraction": 0.1, "test_fraction": 0.1, "src_vocab_size": 400,
        "d_model": 64, "nhead": 2, "num_encoder_layers": 2, "num_decoder_layers": 2,
        "dim_feedforward": 128, "max_tokens": 800, "max_steps": 150, "warmup_steps": 40,
        "lr_factor": 0.5, "eval_interval": 50, "eval_batches": 3, "log_interval": 25,
        "out_dir": "runs/translation-tiny", "bleu_sentences": None,
    },
    # the benchmark model (benchmarks/translation.py): about 40 minutes on a 2-core CPU
    "small": {"time_limit": 40.0, "out_dir": "runs/translation-small", "bleu_sentences": None},
}  # fmt: skip


def make_config(preset: str = "small", overrides: dict | None = None) -> TranslationConfig:
    """A preset, then ``overrides``; unknown keys and presets are errors that name the options."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    values = {**PRESETS[preset], **(overrides or {})}
    known = {f.name for f in dataclasses.fields(TranslationConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
    return TranslationConfig(**values)


def load_pairs(cfg: TranslationConfig) -> list[tuple[str, str]]:
    rows = load_corpus(cfg.data)
    if isinstance(rows, str):
        raise ValueError(f"{cfg.data} is plain text; translation needs (source, target) rows")
    rows = rows[: cfg.max_pairs] if cfg.max_pairs is not None else rows
    if len(rows) < 10:
        raise ValueError(f"{cfg.data}: {len(rows)} pairs are too few to split and train on")
    return rows


def prepare(cfg: TranslationConfig, say=print) -> dict:
    """Split, tokenizers, datasets and the bucketed batcher."""
    train, valid, test = split_pairs(
        load_pairs(cfg), cfg.valid_fraction, cfg.test_fraction, cfg.split_seed
    )
    t0 = time.perf_counter()
    src_tok, tgt_tok = make_tokenizers(train, cfg.src_vocab_size, cfg.tgt_min_freq)
    say(
        f"data: {len(train):,} train / {len(valid):,} valid / {len(test):,} test pairs; "
        f"vocabularies: English BPE {src_tok.vocab_size:,}, Chinese characters "
        f"{tgt_tok.vocab_size:,} ({time.perf_counter() - t0:.1f} s)"
    )
    datasets = {"train": make_dataset(train, src_tok, tgt_tok, cfg.max_length)}
    if valid:
        datasets["val"] = make_dataset(valid, src_tok, tgt_tok, cfg.max_length)
    batcher = BucketBatcher(datasets, cfg.max_tokens)
    return {"splits": (train, valid, test), "tokenizers": (src_tok, tgt_tok), "batcher": batcher}


def build(cfg: TranslationConfig, src_vocab: int, tgt_vocab: int):
    """The model, Adam (lr 1: the schedule sets it) and the NoamLR schedule."""
    manual_seed(cfg.seed)
    model = Seq2SeqTransformer(
        Seq2SeqConfig(
            src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab, d_model=cfg.d_model,
            nhead=cfg.nhead, num_encoder_layers=cfg.num_encoder_layers,
            num_decoder_layers=cfg.num_decoder_layers, dim_feedforward=cfg.dim_feedforward,
            dropout=cfg.dropout, norm_first=cfg.norm_first, max_len=max(cfg.max_length, 128),
            tie_generator=cfg.tie_generator, pad_idx=0,
        )
    )  # fmt: skip
    optimizer = Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    scheduler = NoamLR(optimizer, cfg.d_model, cfg.warmup_steps, cfg.lr_factor)
    return model, optimizer, scheduler


def make_loss_fn(label_smoothing: float):
    """``loss_fn(model, batch)`` for the Trainer; smoothing only while ``model.training``."""

    def loss_fn(model, batch):
        logits, _ = model(
            batch["src_ids"], batch["tgt_ids"], batch["src_mask"] == 0, batch["tgt_mask"] == 0
        )
        eps = label_smoothing if model.training else 0.0
        flat = logits.reshape(-1, logits.shape[-1])
        return cross_entropy(flat, batch["labels"].reshape(-1), label_smoothing=eps)

    return loss_fn


def train_model(cfg: TranslationConfig, model, optimizer, scheduler, batcher, say=print,
                world=None, zero=False):  # fmt: skip
    """Run the Trainer until ``max_steps`` or ``time_limit``; returns the Trainer. ``world``:
    data parallel (a ``DistributedTrainer``; ``zero``: the ZeRO stage, 1 or 2)."""
    has_val = "val" in batcher.datasets
    train_cfg = TrainConfig.from_job(
        cfg,
        eval_interval=cfg.eval_interval if has_val else 10**12,
        checkpoint_dir=os.path.join(cfg.out_dir, "checkpoints") if cfg.checkpoint else None,
    )
    common = dict(scheduler=scheduler, loss_fn=make_loss_fn(cfg.label_smoothing),
                  extra_state={"translation_config": dataclasses.asdict(cfg)})  # fmt: skip
    if world is None:
        trainer = Trainer(model, optimizer, batcher.get_batch, train_cfg, **common)
    else:
        say(f"data parallel: {world.size} ranks share each batch, weighted by target tokens"
            + zero_says(zero))  # fmt: skip
        shards = shard_batcher(batcher.get_batch, world.rank, world.size, even=False,
                               count=labelled_tokens)  # fmt: skip
        trainer = DistributedTrainer(model, optimizer, shards, train_cfg, world=world, zero=zero,
                                     **common)  # fmt: skip
        trainer.synchronize()
    if cfg.time_limit is None:
        trainer.train()
        return trainer
    deadline = time.perf_counter() + 60.0 * cfg.time_limit

    def time_left() -> bool:  # rank 0's clock decides for every rank
        left = time.perf_counter() < deadline
        return left if world is None else world.comm.bcast(left, root=0)

    while trainer.step < cfg.max_steps and time_left():
        trainer.train(until=trainer.step + 10)  # look at the clock every 10 steps
    if has_val and trainer.step % cfg.eval_interval:  # a last evaluation where training stopped
        val = trainer.evaluate()
        trainer.best_val = min(trainer.best_val, val)
        say(f"step {trainer.step:>6}: time limit; val loss {val:.4f}")
    return trainer


def run(cfg: TranslationConfig, say=print, world=None, zero: bool | int = False, data=None) -> dict:
    """Prepare, train, save ``out_dir`` (a :class:`Translator` directory plus history.json)
    and, if ``bleu_sentences`` is not 0, report test BLEU (greedy and beam search).
    ``world``: data parallel over its ranks (rank 0 prints, saves and scores; the others return
    ``{"steps", "history"}``); ``zero``: with ZeRO-1 or 2; ``data``: what ``prepare(cfg)`` returned
    (on every rank), if it was called already."""
    main = world is None or world.is_main
    if main:
        check_output_dir(cfg.out_dir)  # before training, not after it
    else:
        say = quiet
    if data is None:  # (prepared on rank 0, its splits, tokenizers and batcher sent to all)
        data = prepare(cfg, say) if main else None
        data = data if world is None else world.comm.bcast(data, root=0)
    src_tok, tgt_tok = data["tokenizers"]
    model, optimizer, scheduler = build(cfg, src_tok.vocab_size, tgt_tok.vocab_size)
    say(
        f"model: {cfg.num_encoder_layers}+{cfg.num_decoder_layers} layers, d_model "
        f"{cfg.d_model}, {cfg.nhead} heads, ff {cfg.dim_feedforward}: "
        f"{model.num_parameters():,} parameters"
    )
    t0 = time.perf_counter()
    trainer = train_model(cfg, model, optimizer, scheduler, data["batcher"], say, world, zero)
    train_s = time.perf_counter() - t0
    if not main:
        return {"steps": trainer.step, "history": trainer.history}
    settings = {
        "max_length": cfg.max_length,
        "beam_size": cfg.beam_size,
        "length_penalty": cfg.length_penalty,
        "train_config": dataclasses.asdict(cfg),
        "steps": trainer.step,
        "train_seconds": round(train_s, 1),
    }
    translator = Translator(model.eval(), src_tok, tgt_tok, settings)
    translator.save(cfg.out_dir)
    atomic_write_text(os.path.join(cfg.out_dir, "history.json"), json.dumps(trainer.history))
    say(f"trained {trainer.step} steps in {train_s / 60:.1f} min; saved to {cfg.out_dir}")
    result = {"translator": translator, "history": trainer.history, "steps": trainer.step,
              "train_seconds": train_s, "best_val_loss": trainer.best_val, **data}  # fmt: skip
    test = data["splits"][2]
    if cfg.bleu_sentences != 0 and test:
        result["bleu"] = {}
        for name, beam in (("greedy", 1), (f"beam {cfg.beam_size}", cfg.beam_size)):
            t0 = time.perf_counter()
            out = translator.bleu(test, limit=cfg.bleu_sentences, beam_size=beam)
            out["seconds"] = time.perf_counter() - t0
            result["bleu"][name] = out
            say(f"test BLEU ({name}, {len(out['sources'])} sentences): {out['bleu'].score:.2f}")
    return result
