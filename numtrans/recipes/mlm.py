"""Masked-language-model pretraining of a small BERT from scratch (Devlin et al., 2019).

    texts --WordPiece.train--> vocab.txt --encode--> [CLS] w1 w2 ... [SEP]   (one text a sequence)
    MLMCollator: 15% of the real tokens chosen; 80% -> [MASK], 10% -> random, 10% kept
    BertForMaskedLM(ids) -> logits (B, T, V);  loss = cross-entropy at the chosen positions only

The saved directory (``config.json``, ``model.safetensors``, ``vocab.txt``) is what ``finetune``
starts from. Texts come from a bundled corpus (``uci_sentiment``: its sentences; a text corpus such
as ``tinyshakespeare``: its non-empty lines) or a list of strings.

A note on expectations: BERT read 3.3 billion words; a few thousand sentences teach a small
model common words and short-range syntax, not much meaning. That is the point of comparing it
with a real pretrained model (``benchmarks/sentiment.py``).

Data parallel (``mpirun -n P numtrans pretrain-mlm --ddp``, ``pretrain_mlm(..., world=...)``):
rank 0 learns the vocabulary and encodes the texts once and sends them to the others; every rank
draws and masks the same global batch and keeps its rows. The loss is a mean over the *masked
tokens*, whose count differs between shards, so each rank's loss is weighted by its share of
the batch's masked tokens (``ShardBatcher(count=labelled_tokens)``): the averaged gradient is then
exactly the one-process gradient of the whole batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

import numpy as np

from .. import manual_seed
from ..data import MLMCollator, random_split
from ..data.corpus import CORPORA, corpus_info, load_corpus
from ..distributed import (
    DistributedTrainer,
    check_ranks_fit,
    labelled_tokens,
    quiet,
    quiet_unless_main,
    shard_batcher,
    zero_says,
)
from ..finetune.models import encode_texts
from ..io import atomic_write_text
from ..models.bert import BertConfig
from ..models.bert_heads import BertForMaskedLM
from ..optim import AdamW, WarmupCosineLR, param_groups_for_weight_decay
from ..tokenizers import WordPieceTokenizer
from ..training.trainer import TrainConfig, Trainer
from ..validation import (
    ANY_INT,
    BOOL,
    FRACTION,
    NONNEG_FLOAT,
    NONNEG_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY,
    check_output_dir,
    check_settings,
)


@dataclass
class MLMConfig:
    vocab_size: int = 4000  # WordPiece vocabulary learned from the texts
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_length: int = 64  # longer texts are cut (keeping [SEP])
    dropout: float = 0.1
    batch_size: int = 32
    max_steps: int = 1000
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr: float = 1e-4
    weight_decay: float = 0.01
    mlm_probability: float = 0.15
    val_fraction: float = 0.05
    eval_interval: int = 200
    eval_batches: int = 10
    log_interval: int = 50
    seed: int = 0
    progress: bool = False

    def __post_init__(self):
        check_settings(self, _MLM_RULES)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size={self.hidden_size} must be divisible by "
                f"num_attention_heads={self.num_attention_heads}"
            )
        if self.max_length < 3:  # [CLS] + one token + [SEP]
            raise ValueError(f"setting max_length={self.max_length} is invalid: it must be >= 3")
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr={self.min_lr} must not exceed lr={self.lr}")


_MLM_RULES = {
    "vocab_size": POSITIVE_INT,
    "hidden_size": POSITIVE_INT,
    "num_hidden_layers": POSITIVE_INT,
    "num_attention_heads": POSITIVE_INT,
    "intermediate_size": POSITIVE_INT,
    "max_length": POSITIVE_INT,
    "dropout": PROBABILITY,
    "batch_size": POSITIVE_INT,
    "max_steps": POSITIVE_INT,
    "lr": POSITIVE_FLOAT,
    "warmup_steps": NONNEG_INT,
    "min_lr": NONNEG_FLOAT,
    "weight_decay": NONNEG_FLOAT,
    "mlm_probability": FRACTION,
    "val_fraction": FRACTION,
    "eval_interval": POSITIVE_INT,
    "eval_batches": POSITIVE_INT,
    "log_interval": POSITIVE_INT,
    "seed": ANY_INT,
    "progress": BOOL,
}


def corpus_texts(name_or_path: str) -> list[str]:
    """Training texts: a bundled table's text column, a text corpus' lines, or a file's lines."""
    data = load_corpus(name_or_path)
    if isinstance(data, str):
        return [line.strip() for line in data.split("\n") if line.strip()]
    columns = corpus_info(name_or_path)["columns"] if name_or_path in CORPORA else None
    column = columns.index("sentence") if columns and "sentence" in columns else 0
    return [row[column] for row in data if row[column].strip()]


def build_mlm(cfg: MLMConfig, vocab_size: int):
    """A fresh ``BertForMaskedLM`` with the config's sizes."""
    return BertForMaskedLM(
        BertConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.hidden_size,
            num_hidden_layers=cfg.num_hidden_layers,
            num_attention_heads=cfg.num_attention_heads,
            intermediate_size=cfg.intermediate_size,
            max_position_embeddings=cfg.max_length,
            hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=cfg.dropout,
        )
    )


def pretrain_mlm(texts: list[str], cfg: MLMConfig | None = None, out_dir=None, say=print,
                 world=None, zero: bool | int = False) -> dict:  # fmt: skip
    """Learn a WordPiece vocabulary and a ``BertForMaskedLM`` on ``texts``; save to ``out_dir``.

    ``world`` (``numtrans.distributed.init_world()`` under ``mpirun -n P``): data parallel, rank 0
    alone prints and saves; ``zero``: the ZeRO stage (1: the optimiser state sharded, 2: the gradients too)."""
    cfg = cfg or MLMConfig()
    main = world is None or world.is_main
    if not main:
        say, out_dir = quiet, None
    if out_dir is not None:
        check_output_dir(str(out_dir))  # before training, not after it
    if len(texts) < 20:
        raise ValueError(f"MLM pretraining needs at least 20 texts, got {len(texts)}")
    if main:
        tokenizer = WordPieceTokenizer.train(texts, cfg.vocab_size)
        ids = encode_texts(tokenizer, texts, cfg.max_length)
    if world is not None:  # one vocabulary for all: rank 0's, sent to the others
        tokenizer, ids = world.comm.bcast((tokenizer, ids) if main else None, root=0)
    train_ids, val_ids = random_split(ids, cfg.val_fraction, seed=cfg.seed)
    manual_seed(cfg.seed)
    model = build_mlm(cfg, tokenizer.vocab_size)
    say(
        f"MLM pretraining: {len(train_ids):,} train / {len(val_ids):,} val texts, "
        f"vocabulary {tokenizer.vocab_size}, {model.num_parameters():,} parameters"
    )
    collate = MLMCollator(
        tokenizer.pad_id, tokenizer.vocab[tokenizer.mask_token], tokenizer.vocab_size,
        tokenizer.special_ids, cfg.mlm_probability, seed=cfg.seed,
    )  # fmt: skip
    # Texts sorted by length: a batch is B neighbours in that order from a random start, so it
    # holds similar lengths and padding (compute spent on nothing) stays small.
    splits = {k: sorted(v, key=len) for k, v in (("train", train_ids), ("val", val_ids))}

    def get_batch(split, rng):
        texts = splits[split]
        start = int(rng.integers(0, max(1, len(texts) - cfg.batch_size + 1)))
        return collate([np.asarray(t) for t in texts[start : start + cfg.batch_size]])

    groups = param_groups_for_weight_decay(model.named_parameters(), cfg.weight_decay)
    optimizer = AdamW(groups, lr=cfg.lr)
    warmup = min(cfg.warmup_steps, cfg.max_steps // 10)  # short runs warm up for 10%
    scheduler = WarmupCosineLR(optimizer, warmup, cfg.max_steps, min_lr=cfg.min_lr)
    loss_fn = lambda m, batch: m(**batch).loss  # noqa: E731
    if world is None:
        trainer = Trainer(model, optimizer, get_batch, TrainConfig.from_job(cfg),
                          scheduler=scheduler, loss_fn=loss_fn)  # fmt: skip
    else:
        check_ranks_fit(cfg.batch_size, world.size)
        say(f"data parallel: {world.size} ranks share each global batch of {cfg.batch_size}, "
            "weighted by masked tokens" + zero_says(zero))  # fmt: skip
        shards = shard_batcher(get_batch, world.rank, world.size, even=False, count=labelled_tokens)
        trainer = DistributedTrainer(model, optimizer, shards, TrainConfig.from_job(cfg),
                                     scheduler=scheduler, loss_fn=loss_fn, world=world,
                                     zero=zero)  # fmt: skip
        trainer.synchronize()
    with quiet_unless_main(world):  # rank 0 logs for the job
        history = trainer.train()
    model.eval()
    say(
        f"MLM validation loss {trainer.best_val:.4f} (best); ln(vocab) = {np.log(tokenizer.vocab_size):.2f}"
    )
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        atomic_write_text(
            os.path.join(out_dir, "history.json"),
            json.dumps({"history": history, "config": asdict(cfg)}),
        )
        say(f"saved to {out_dir}")
    return {
        "model": model,
        "tokenizer": tokenizer,
        "history": history,
        "best_val": trainer.best_val,
    }
