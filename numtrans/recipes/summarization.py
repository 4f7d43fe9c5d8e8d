"""CSL title generation: pretrain (optionally) by denoising, then fine-tune abstract -> title.

    pairs (CSL ts_dev + ts_test, 2,000)  --seeded split-->  train / valid / test
    characters  --char_tokenizer (CSL train side + the pretraining text)-->  ids
    [stage 1, pretrain_steps > 0]  Chinese text (sishu, Tatoeba's Chinese side), in documents of
        <= 128 characters  --shuffle sentences, mask 30% in Poisson(3) spans-->  reconstruct it
    [stage 2]  abstract (<= 256 characters) -> title, the same model, fresh Adam and warm-up
    loss = cross_entropy(logits, labels, label_smoothing); Adam(0.9, 0.98) with NoamLR

The character vocabulary is the same with or without pretraining (it includes the pretraining
text either way), so the two models differ only in their starting weights: the comparison in
``benchmarks/summarization.py`` is "pretrain, then fine-tune" against fine-tuning alone, with the
same fine-tuning steps. ``time_limit`` / ``pretrain_time_limit`` (minutes) stop a stage early.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .. import manual_seed
from ..data import TranslationDataset, load_corpus
from ..functional import cross_entropy
from ..models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from ..optim import Adam, NoamLR
from ..summarization.abstractive import AbstractiveSummarizer, char_tokenizer
from ..summarization.denoising import DenoisingDataset, chunk_text
from ..training.trainer import TrainConfig, Trainer
from ..translation.data import BucketBatcher, split_pairs
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
    optional,
)


@dataclass
class SummarizationConfig:
    csl_files: tuple = ()  # CSL title-generation TSVs: "to title<TAB>abstract<TAB>title"
    out_dir: str = "runs/csl-title"
    max_pairs: int | None = None
    valid_fraction: float = 0.05
    test_fraction: float = 0.2
    split_seed: int = 0
    min_char_freq: int = 2
    max_source_length: int = 256  # abstract characters (+ <eos>)
    # model
    d_model: int = 128
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 512
    dropout: float = 0.1
    # fine-tuning
    max_steps: int = 500
    time_limit: float | None = None
    max_tokens: int = 3000
    warmup_steps: int = 200
    lr_factor: float = 0.5
    label_smoothing: float = 0.1
    # denoising pretraining (0 steps: none)
    pretrain_steps: int = 0
    pretrain_time_limit: float | None = None
    pretrain_corpora: tuple = ("sishu_zh", "tatoeba_cmn_eng")
    pretrain_texts: tuple = field(default=(), repr=False)  # more raw text (tests, your own)
    pretrain_max_chars: int = 128
    mask_ratio: float = 0.3
    poisson_lambda: float = 3.0
    pretrain_copies: int = 1
    # logging, decoding defaults saved with the model
    eval_interval: int = 100
    log_interval: int = 50
    seed: int = 1337
    progress: bool = False
    beam_size: int = 4
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 3

    def __post_init__(self):
        check_settings(self, _RULES)
        if self.d_model % self.nhead:
            raise ValueError(f"d_model={self.d_model} must be divisible by nhead={self.nhead}")
        if self.valid_fraction + self.test_fraction >= 1:
            raise ValueError("valid_fraction + test_fraction must be below 1")


_RULES = {
    "out_dir": TEXT, "max_pairs": optional(POSITIVE_INT), "valid_fraction": FRACTION,
    "test_fraction": FRACTION, "split_seed": ANY_INT, "min_char_freq": POSITIVE_INT,
    "max_source_length": POSITIVE_INT, "d_model": POSITIVE_INT, "nhead": POSITIVE_INT,
    "num_encoder_layers": POSITIVE_INT, "num_decoder_layers": POSITIVE_INT,
    "dim_feedforward": POSITIVE_INT, "dropout": PROBABILITY, "max_steps": POSITIVE_INT,
    "time_limit": optional(POSITIVE_FLOAT), "max_tokens": POSITIVE_INT,
    "warmup_steps": POSITIVE_INT, "lr_factor": POSITIVE_FLOAT, "label_smoothing": PROBABILITY,
    "pretrain_steps": NONNEG_INT, "pretrain_time_limit": optional(POSITIVE_FLOAT),
    "pretrain_max_chars": POSITIVE_INT, "mask_ratio": PROBABILITY,
    "poisson_lambda": POSITIVE_FLOAT, "pretrain_copies": POSITIVE_INT,
    "eval_interval": POSITIVE_INT, "log_interval": POSITIVE_INT, "seed": ANY_INT,
    "beam_size": POSITIVE_INT, "length_penalty": NONNEG_FLOAT,
    "no_repeat_ngram_size": NONNEG_INT,
}  # fmt: skip


def load_csl(path: str) -> list[tuple[str, str]]:
    """``(abstract, title)`` pairs of a CSL title-generation TSV; a malformed line is an error
    naming the file and the line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such CSL file: {path}")
    pairs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3 or not fields[1].strip() or not fields[2].strip():
                raise ValueError(f"{path}:{n}: expected 'to title<TAB>abstract<TAB>title'")
            pairs.append((fields[1], fields[2]))
    return pairs


def pretraining_text(cfg: SummarizationConfig) -> list[str]:
    """The raw Chinese text for denoising: the bundled corpora's lines (Tatoeba's Chinese
    side), then ``cfg.pretrain_texts``."""
    texts = []
    for name in cfg.pretrain_corpora:
        corpus = load_corpus(name)
        if isinstance(corpus, str):
            texts += [line for line in corpus.split("\n") if line.strip()]
        else:  # (english, chinese, attribution) rows
            texts += [row[1] for row in corpus]
    return texts + list(cfg.pretrain_texts)


def prepare(cfg: SummarizationConfig, say=print) -> dict:
    """The split, the tokenizer, and the fine-tuning (and pretraining) batchers."""
    if not cfg.csl_files:
        raise ValueError("no CSL files given (csl_files)")
    pairs = [p for path in cfg.csl_files for p in load_csl(path)][: cfg.max_pairs]
    train, valid, test = split_pairs(pairs, cfg.valid_fraction, cfg.test_fraction, cfg.split_seed)
    raw = pretraining_text(cfg)
    tok = char_tokenizer([a + t for a, t in train] + raw, cfg.min_char_freq)
    data = {"splits": (train, valid, test), "tokenizer": tok}
    ds = {"train": TranslationDataset(train, tok, tok, cfg.max_source_length)}
    if valid:
        ds["val"] = TranslationDataset(valid, tok, tok, cfg.max_source_length)
    data["finetune"] = BucketBatcher(ds, cfg.max_tokens)
    say(f"CSL: {len(train)} train / {len(valid)} valid / {len(test)} test pairs; "
        f"{tok.vocab_size} characters")  # fmt: skip
    if cfg.pretrain_steps:
        docs = chunk_text(raw, cfg.pretrain_max_chars)
        rng = np.random.default_rng(cfg.seed)
        noised = DenoisingDataset(docs, tok, rng, cfg.mask_ratio, cfg.poisson_lambda,
                                  cfg.pretrain_copies, cfg.pretrain_max_chars + 1)  # fmt: skip
        data["pretrain"] = BucketBatcher({"train": noised, "val": noised}, cfg.max_tokens)
        say(f"denoising: {len(docs)} documents of <= {cfg.pretrain_max_chars} characters, "
            f"{sum(map(len, docs)):,} characters, x{cfg.pretrain_copies} noisings")  # fmt: skip
    return data


def build(cfg: SummarizationConfig, vocab_size: int):
    """A ``Seq2SeqTransformer`` with one embedding for encoder, decoder and output."""
    manual_seed(cfg.seed)
    return Seq2SeqTransformer(
        Seq2SeqConfig(
            src_vocab_size=vocab_size, tgt_vocab_size=vocab_size, d_model=cfg.d_model,
            nhead=cfg.nhead, num_encoder_layers=cfg.num_encoder_layers,
            num_decoder_layers=cfg.num_decoder_layers, dim_feedforward=cfg.dim_feedforward,
            dropout=cfg.dropout, max_len=max(cfg.max_source_length, cfg.pretrain_max_chars) + 8,
            share_embeddings=True, tie_generator=True, pad_idx=0,
        )
    )  # fmt: skip


def _loss_fn(label_smoothing: float):
    def loss_fn(model, batch):
        logits, _ = model(
            batch["src_ids"], batch["tgt_ids"], batch["src_mask"] == 0, batch["tgt_mask"] == 0
        )
        eps = label_smoothing if model.training else 0.0  # validation: plain cross-entropy
        return cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), label_smoothing=eps
        )

    return loss_fn


def train_stage(cfg, model, batcher, steps: int, minutes: float | None, say=print) -> dict:
    """``steps`` updates (or ``minutes``) with a fresh Adam + NoamLR; the Trainer's history
    plus ``seconds`` and ``steps`` done."""
    optimizer = Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    scheduler = NoamLR(optimizer, cfg.d_model, cfg.warmup_steps, cfg.lr_factor)
    has_val = "val" in batcher.datasets
    trainer = Trainer(
        model, optimizer, batcher.get_batch,
        TrainConfig(max_steps=steps, eval_interval=cfg.eval_interval if has_val else 10**12,
                    eval_batches=5, log_interval=cfg.log_interval, seed=cfg.seed,
                    progress=cfg.progress),
        scheduler=scheduler, loss_fn=_loss_fn(cfg.label_smoothing),
    )  # fmt: skip
    t0 = time.perf_counter()
    deadline = None if minutes is None else t0 + 60.0 * minutes
    while trainer.step < steps and (deadline is None or time.perf_counter() < deadline):
        trainer.train(until=trainer.step + 10)  # look at the clock every 10 steps
    seconds = time.perf_counter() - t0
    say(f"{trainer.step} steps in {seconds / 60:.1f} min")
    return {**trainer.history, "seconds": seconds, "steps": trainer.step}


def run(cfg: SummarizationConfig, say=print) -> dict:
    """Prepare, pretrain (if ``pretrain_steps``), fine-tune, save ``out_dir``."""
    check_output_dir(cfg.out_dir)
    data = prepare(cfg, say)
    tok = data["tokenizer"]
    model = build(cfg, tok.vocab_size)
    say(f"model: {cfg.num_encoder_layers}+{cfg.num_decoder_layers} layers, d_model "
        f"{cfg.d_model}: {model.num_parameters():,} parameters")  # fmt: skip
    result = {**data, "model": model}
    if cfg.pretrain_steps:
        say("stage 1: denoising pretraining")
        result["pretrain"] = train_stage(
            cfg, model, data["pretrain"], cfg.pretrain_steps, cfg.pretrain_time_limit, say
        )
    say("stage 2: fine-tuning abstract -> title")
    result["finetune"] = train_stage(
        cfg, model, data["finetune"], cfg.max_steps, cfg.time_limit, say
    )
    settings = {
        "max_length": cfg.max_source_length,
        "beam_size": cfg.beam_size,
        "length_penalty": cfg.length_penalty,
        "no_repeat_ngram_size": cfg.no_repeat_ngram_size,
        "train_config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "pretrain_texts"},
    }
    summarizer = AbstractiveSummarizer(model.eval(), tok, settings)
    summarizer.save(cfg.out_dir)
    result["summarizer"] = summarizer
    return result
