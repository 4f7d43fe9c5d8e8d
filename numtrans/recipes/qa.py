"""Fine-tune a ``BertForQuestionAnswering`` on SQuAD features (from ``prepare_features``).

Each step: a shuffled mini-batch of windows, the mean of the start and end cross-entropies,
backward, gradient clipping, AdamW, and a linear-warmup + cosine learning-rate schedule (as in
BERT's SQuAD recipe: lr ~3e-5 to 1e-4 for a pretrained encoder, 2 epochs, 10% warmup).
"""

from __future__ import annotations

import time

import numpy as np

from ..optim import AdamW
from ..optim.clip import clip_grad_norm_
from ..optim.lr_scheduler import WarmupCosineLR

FEATURE_KEYS = ("input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions")


def train_qa(
    model,
    features: dict,
    epochs: float = 2.0,
    lr: float = 5e-5,
    batch_size: int = 16,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.1,
    max_grad_norm: float = 1.0,
    seed: int = 0,
    max_seconds: float | None = None,
    max_cpu_seconds: float | None = None,
    max_steps: int | None = None,
    log_every: int = 0,
    callback=None,
) -> list[float]:
    """Train in place; the training loss of every step. ``epochs`` may be fractional.

    ``max_steps`` caps the run (the schedule is fitted to it); ``max_seconds`` (wall clock) and
    ``max_cpu_seconds`` (this process's CPU time spent in the training steps, the callback's
    excluded, so a shared machine's load does not shorten the run) stop early: the schedule
    still assumes the full run. ``callback(step, loss)`` is called after every step (for a
    learning curve, e.g. an evaluation every N steps); ``log_every`` prints."""
    missing = [k for k in FEATURE_KEYS if k not in features]
    if missing:
        raise ValueError(f"training features lack {missing}; use prepare_features(training=True)")
    n = len(features["input_ids"])
    if n == 0:
        raise ValueError("no training features")
    if batch_size < 1 or epochs <= 0:
        raise ValueError("batch_size must be >= 1 and epochs > 0")
    steps_per_epoch = -(-n // batch_size)
    total = max(2, int(round(epochs * steps_per_epoch)))
    if max_steps is not None:
        total = max(2, min(total, int(max_steps)))
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = WarmupCosineLR(optimizer, int(warmup_ratio * total), total, start_factor=0.1)
    rng = np.random.default_rng(seed)
    model.train()
    losses, order, t0 = [], np.empty(0, dtype=np.int64), time.perf_counter()
    cpu_used = 0.0
    for step in range(total):
        c0 = time.process_time()
        if len(order) < batch_size:  # a fresh permutation each epoch
            order = np.concatenate([order, rng.permutation(n)])
        idx, order = order[:batch_size], order[batch_size:]
        batch = {k: features[k][idx] for k in FEATURE_KEYS}
        out = model(**batch)
        optimizer.zero_grad()
        out.loss.backward()
        clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        loss = float(out.loss.numpy())
        losses.append(loss)
        cpu_used += time.process_time() - c0
        if callback is not None:
            callback(step, loss)
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{total} loss {np.mean(losses[-log_every:]):.4f}", flush=True)
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
        if max_cpu_seconds is not None and cpu_used > max_cpu_seconds:
            break
    model.eval()
    return losses
