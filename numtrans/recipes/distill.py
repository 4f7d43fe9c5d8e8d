"""Distil a fine-tuned BERT classifier into a shallower student (DistilBERT's recipe).

    student = student_from_teacher(teacher, num_layers=3)    # every other layer of a 6-layer one
    result = distill("teacher/", train, DistillConfig(), val=val, out_dir="student/")

The student is the teacher with layers left out (``numtrans.compress.student``): the
embeddings, the pooler, the head and ``num_layers`` of the teacher's encoder layers, evenly
spaced (0, 2, 4 of 6), copied with their weights. It trains on

    loss = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y)

(``distillation_loss``). The teacher's logits z_t over the training texts never change, so they
are computed once before training (and kept in ``teacher_logits.safetensors`` in the output
directory: a second run on the same texts skips the teacher entirely). ``alpha=0`` trains the
same student on the hard labels alone: the baseline that shows what the soft targets add.

Two optional intermediate-layer terms (``numtrans.compress.transfer``) are added to it:
``hidden_weight`` * TinyBERT's hidden-state MSE (student layer m vs teacher layer m N / M) and
``attention_weight`` * MiniLM's KL between the last layers' attention distributions. Both need
the teacher's insides for the batch, which are too large to cache ((N + 1) x T x C floats a
text): with either on, the teacher runs forward (no gradient) on every training batch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import numpy as np

from .. import manual_seed
from ..autograd import no_grad
from ..compress.distillation import distillation_loss, teacher_logits_cached
from ..compress.student import student_from_teacher
from ..compress.transfer import attention_kl_loss, hidden_state_loss
from ..finetune.data import LabeledData
from ..finetune.models import encode_texts, make_batch, pad_id_of
from ..training.trainer import TrainConfig, Trainer
from .finetune import (
    build_optimizer,
    evaluate,
    format_metrics,
    load_finetuned,
    save_finetuned,
)

CACHE_NAME = "teacher_logits.safetensors"


@dataclass
class DistillConfig:
    num_layers: int = 3
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the soft-target term; 0 = hard labels only
    hidden_weight: float = 0.0  # TinyBERT's hidden-state MSE, added with this weight
    attention_weight: float = 0.0  # MiniLM's last-layer attention KL, added with this weight
    epochs: float = 3.0
    batch_size: int = 16
    lr: float = 5e-5
    max_length: int = 64
    max_steps: int | None = None
    seed: int = 0
    # read by finetune's optimizer builder: the student trains whole
    body_lr: float | None = None
    freeze: bool = False
    freeze_embeddings: bool = False
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1

    def __post_init__(self):
        if not isinstance(self.num_layers, int) or self.num_layers < 1:
            raise ValueError(f"num_layers must be a whole number >= 1, got {self.num_layers!r}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.hidden_weight < 0 or self.attention_weight < 0:
            raise ValueError(
                f"hidden_weight and attention_weight must be >= 0, got {self.hidden_weight} "
                f"and {self.attention_weight}"
            )
        if self.epochs <= 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs, batch_size and lr must be positive")


@dataclass
class DistillResult:
    model: object
    metrics: dict  # the student's, on the validation texts
    teacher_metrics: dict
    history: dict
    cached: bool  # the teacher's logits came from the cache


def _padded(ids: list[list[int]], pad: int) -> np.ndarray:
    out = np.full((len(ids), max(len(x) for x in ids)), pad, dtype=np.int64)
    for i, x in enumerate(ids):
        out[i, : len(x)] = x
    return out


def distill(
    teacher_dir: str,
    train: LabeledData,
    cfg: DistillConfig | None = None,
    val: LabeledData | None = None,
    out_dir: str | None = None,
    say=print,
) -> DistillResult:
    """Train a student of ``cfg.num_layers`` layers on ``train`` with the teacher's soft targets."""
    cfg = cfg or DistillConfig()
    teacher, tokenizer, labels, max_length = load_finetuned(teacher_dir)
    if labels.task != "classification":
        raise ValueError(
            "distillation needs a classifier teacher (its labels.json says regression)"
        )
    if val is None:
        train, val = train.split(0.1, cfg.seed)
    cfg = replace(cfg, max_length=min(cfg.max_length, max_length))
    teacher.eval()
    student = student_from_teacher(teacher, cfg.num_layers)
    pad = pad_id_of(tokenizer)
    ids = _padded(encode_texts(tokenizer, train.texts + val.texts, cfg.max_length), pad)
    y = np.concatenate([labels.encode(train), labels.encode(val)])

    calls = []

    def teacher_forward(rows):  # rows: (b, T) padded ids; trimmed to the batch's longest text
        calls.append(len(rows))
        mask = (rows != pad).astype(np.int64)
        width = int(mask.sum(axis=1).max())
        with no_grad():
            return teacher(rows[:, :width], attention_mask=mask[:, :width]).logits.numpy()

    cache = None
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        cache = os.path.join(out_dir, CACHE_NAME)
    z_t = teacher_logits_cached(teacher_forward, ids, cfg.batch_size, cache)
    cached = not calls  # the teacher never ran: its logits came from the cache
    n_train = len(train)
    say(
        f"distilling {teacher.config.num_hidden_layers}-layer teacher {teacher_dir} into a "
        f"{cfg.num_layers}-layer student (T={cfg.temperature}, alpha={cfg.alpha}"
        + (f", hidden x{cfg.hidden_weight}" if cfg.hidden_weight else "")
        + (f", attention x{cfg.attention_weight}" if cfg.attention_weight else "")
        + "): "
        f"{n_train} train / {len(val)} validation texts; teacher logits "
        + ("loaded from the cache" if cached else "computed once")
    )
    steps = math.ceil(cfg.epochs * math.ceil(n_train / cfg.batch_size))
    steps = min(steps, cfg.max_steps) if cfg.max_steps else steps
    manual_seed(cfg.seed)
    optimizer, scheduler = build_optimizer(student, cfg, steps)
    state = {"order": np.zeros(0, dtype=np.int64), "pos": 0}

    def get_batch(split, rng):
        if split == "val":
            rows = n_train + rng.choice(len(val), size=min(cfg.batch_size, len(val)), replace=False)
        else:
            if state["pos"] >= len(state["order"]):
                state["order"], state["pos"] = rng.permutation(n_train), 0
            rows = state["order"][state["pos"] : state["pos"] + cfg.batch_size]
            state["pos"] += cfg.batch_size
        batch = make_batch([ids[i][ids[i] != pad].tolist() for i in rows], pad, y[rows])
        batch["teacher_logits"] = z_t[rows]
        return batch

    want_h, want_a = cfg.hidden_weight > 0, cfg.attention_weight > 0

    def loss_fn(model, batch):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if not (want_h or want_a):
            logits = model(ids, attention_mask=mask).logits
            return distillation_loss(
                logits, batch["teacher_logits"], batch["labels"], cfg.temperature, cfg.alpha
            )
        # the classifier's forward, spelled out, to keep the body's hidden states / attentions
        out = model.bert(ids, None, mask, output_hidden_states=want_h, output_attentions=want_a)
        logits = model.classifier(model.dropout(model.pool(out, mask)))
        loss = distillation_loss(
            logits, batch["teacher_logits"], batch["labels"], cfg.temperature, cfg.alpha
        )
        with no_grad():
            ref = teacher.bert(ids, None, mask, want_h, want_a)
        if want_h:
            teacher_h = [h.data for h in ref.hidden_states]
            loss = loss + hidden_state_loss(out.hidden_states, teacher_h, mask) * cfg.hidden_weight
        if want_a:
            a_t = ref.attentions[-1].data
            loss = loss + attention_kl_loss(out.attentions[-1], a_t, mask) * cfg.attention_weight
        return loss

    trainer = Trainer(
        student, optimizer, get_batch,
        TrainConfig(max_steps=steps, eval_interval=max(1, math.ceil(n_train / cfg.batch_size)),
                    eval_batches=4, log_interval=20, seed=cfg.seed, progress=False),
        scheduler=scheduler, loss_fn=loss_fn,
    )  # fmt: skip
    history = trainer.train()
    student.eval()
    metrics = evaluate(student, tokenizer, val, labels, cfg.max_length)
    teacher_metrics = evaluate(teacher, tokenizer, val, labels, cfg.max_length)
    say(f"teacher: {format_metrics(teacher_metrics)}")
    say(f"student: {format_metrics(metrics)}")
    if out_dir is not None:
        save_finetuned(out_dir, student, tokenizer, labels, cfg, history, metrics)
        say(f"saved to {out_dir}")
    return DistillResult(student, metrics, teacher_metrics, history, cached)
