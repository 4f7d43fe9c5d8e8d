"""A small, readable training loop: the one every model in numtrans trains with.

One optimisation step::

    for micro_step in range(grad_accum_steps):       # gradient accumulation:
        batch = get_batch("train", rng)               #   grads of several batches add up in .grad
        loss = loss_fn(model, batch) / grad_accum_steps
        loss.backward()
    clip_grad_norm_(params, grad_clip)                # keep one bad batch from blowing up training
    optimizer.step(); scheduler.step(); optimizer.zero_grad()

Every ``eval_interval`` steps the mean validation loss over ``eval_batches`` fixed batches is
recorded; training can stop early when it has not improved for ``patience`` evaluations.
``history`` keeps everything for plotting (``numtrans.viz.plot_history``).

Checkpoints (``checkpoint.py``) hold the model, the optimiser and scheduler state, the step, the
random states and the history, so ``resume`` continues exactly where an uninterrupted run would be.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .. import random as nt_random
from ..allocator import keep_freed_memory
from ..autograd import no_grad
from ..optim import clip_grad_norm_, optimizer_state_from_flat, optimizer_state_to_flat
from . import checkpoint as ckpt


@dataclass
class TrainConfig:
    max_steps: int = 1000
    eval_interval: int = 100  # evaluate every N steps (and at the end)
    eval_batches: int = 20  # validation batches per evaluation
    log_interval: int = 10
    grad_accum_steps: int = 1
    grad_clip: float | None = 1.0  # max global gradient norm; None = no clipping
    patience: int | None = None  # stop after this many evaluations without improvement
    checkpoint_dir: str | None = None
    checkpoint_interval: int | None = None  # default: every evaluation
    seed: int = 1337
    progress: bool = True  # tqdm progress bar when available
    # a NaN/inf loss: "stop" raises NonFiniteLossError (the last checkpoint is kept, nothing is
    # saved over it), "skip" drops that step's update and goes on (counted in skipped_steps)
    on_nonfinite: str = "stop"
    # keep freed memory mapped for the next step (numtrans.allocator: ~30,000 fewer page faults
    # per step of the small GPT, 15-25 % of its time); the process keeps its peak size
    keep_freed_memory: bool = True

    @classmethod
    def from_job(cls, job_config, **overrides) -> TrainConfig:
        """The loop's settings taken by name from a job's config (``max_steps``, ``seed``,
        ``grad_clip``, ...: every field the two share), then ``overrides``. A recipe's config
        declares a loop setting once, under this class's name, instead of copying it here by
        hand."""
        names = [f.name for f in fields(cls)]
        values = {n: getattr(job_config, n) for n in names if hasattr(job_config, n)}
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"TrainConfig has no field(s) {unknown}")
        return cls(**{**values, **overrides})


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; raised before the optimiser takes the step."""


def default_loss_fn(model, batch):
    """``model(inputs, targets)`` returns ``(logits, loss)`` (GPT-style models)."""
    _, loss = model(*batch)
    return loss


def _count_tokens(batch) -> int:
    if isinstance(batch, dict):  # e.g. translation: count source and target tokens
        keys = [k for k in ("input_ids", "src_ids", "tgt_ids") if k in batch] or [next(iter(batch))]
        return sum(int(np.asarray(getattr(batch[k], "data", batch[k])).size) for k in keys)
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(np.asarray(getattr(first, "data", first)).size)


@dataclass
class Trainer:
    model: object
    optimizer: object
    get_batch: Callable  # get_batch(split: "train"|"val", rng: np.random.Generator) -> batch
    config: TrainConfig = field(default_factory=TrainConfig)
    scheduler: object | None = None
    loss_fn: Callable = default_loss_fn
    extra_state: dict = field(default_factory=dict)  # saved in checkpoints (e.g. model config)

    def __post_init__(self):
        self.step = 0
        self.rng = np.random.default_rng(self.config.seed)  # batch sampling
        nt_random.manual_seed(self.config.seed)  # init-independent randomness (dropout)
        # aligned lists, one entry per logged step; val_loss is None where there was no eval
        self.history = {
            "step": [],
            "train_loss": [],
            "val_loss": [],
            "lr": [],
            "tokens_per_sec": [],
            "elapsed": [],  # seconds of training so far (summed over resumed runs)
        }
        self.best_val = math.inf
        self._bad_evals = 0
        self.skipped_steps = 0
        if self.config.on_nonfinite not in ("stop", "skip"):
            raise ValueError(
                f"on_nonfinite={self.config.on_nonfinite!r}: expected 'stop' or 'skip'"
            )

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> float:
        """Mean loss over ``eval_batches`` validation batches (the same batches every time)."""
        rng = np.random.default_rng(self.config.seed + 1)
        was_training = getattr(self.model, "training", True)
        self.model.eval()
        with no_grad():
            losses = [
                self._val_loss(self.get_batch("val", rng)) for _ in range(self.config.eval_batches)
            ]
        if was_training:
            self.model.train()
        return float(np.mean(losses))

    def _val_loss(self, batch) -> float:
        """One validation batch's loss (``DistributedTrainer`` weights it by its shard)."""
        return float(self.loss_fn(self.model, batch).item())

    # ------------------------------------------------------------------ one step
    def train_step(self) -> tuple[float, int]:
        """One optimiser step (with accumulation); returns (mean loss, tokens seen)."""
        cfg = self.config
        total, tokens = 0.0, 0
        for _ in range(cfg.grad_accum_steps):
            batch = self.get_batch("train", self.rng)
            loss = self.loss_fn(self.model, batch)
            value = float(loss.item())
            if not math.isfinite(value):
                if cfg.on_nonfinite == "skip":  # drop this update, keep the weights as they were
                    self.optimizer.zero_grad()
                    self.skipped_steps += 1
                    self.step += 1
                    return math.nan, tokens
                raise NonFiniteLossError(
                    f"the training loss is {value} at step {self.step + 1}: training stopped "
                    "before updating the weights (the last checkpoint is kept). Lower the "
                    "learning rate, or set on_nonfinite='skip' to drop such steps"
                )
            (loss / cfg.grad_accum_steps).backward()
            total += value
            tokens += _count_tokens(batch)
        if cfg.grad_clip is not None:
            clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad()
        self.step += 1
        return total / cfg.grad_accum_steps, tokens

    # ------------------------------------------------------------------ the loop
    def train(self, until: int | None = None) -> dict:
        """Train to ``config.max_steps`` (or stop early at step ``until``); return the history."""
        cfg = self.config
        last = cfg.max_steps if until is None else min(until, cfg.max_steps)
        bar = self._progress_bar()
        say = bar.write if bar is not None else print
        if cfg.keep_freed_memory:
            keep_freed_memory()
        self.model.train()
        t0, tokens_since = time.perf_counter(), 0
        done = [e for e in self.history.get("elapsed", []) if e is not None]
        self._clock = (time.perf_counter(), done[-1] if done else 0.0)  # (start, seconds before)
        try:
            while self.step < last:
                loss, tokens = self.train_step()
                tokens_since += tokens
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
                if self.step % cfg.log_interval == 0 or self.step == cfg.max_steps:
                    dt = time.perf_counter() - t0
                    rate = tokens_since / dt if dt > 0 else 0.0
                    lr = self.optimizer.param_groups[0]["lr"]
                    self._record(step=self.step, train_loss=loss, lr=lr, tokens_per_sec=rate)
                    say(
                        f"step {self.step:>6}/{cfg.max_steps} | loss {loss:.4f} | "
                        f"lr {lr:.2e} | {rate:,.0f} tok/s"
                    )
                    t0, tokens_since = time.perf_counter(), 0
                if self.step % cfg.eval_interval == 0 or self.step == cfg.max_steps:
                    if self._evaluate_and_maybe_stop(say):
                        break
        except KeyboardInterrupt:
            where = ckpt.latest_checkpoint(cfg.checkpoint_dir) if cfg.checkpoint_dir else None
            msg = f"last checkpoint: {where}" if where else "no checkpoint was written"
            print(f"\ninterrupted at step {self.step}; {msg}", file=sys.stderr)
            raise
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _evaluate_and_maybe_stop(self, say) -> bool:
        cfg = self.config
        val = self.evaluate()
        if self.history["step"] and self.history["step"][-1] == self.step:
            self.history["val_loss"][-1] = val
        else:
            self._record(step=self.step, val_loss=val)
        improved = val < self.best_val
        if improved:
            self.best_val, self._bad_evals = val, 0
        else:
            self._bad_evals += 1
        say(f"step {self.step:>6}: val loss {val:.4f}" + (" (best)" if improved else ""))
        interval = cfg.checkpoint_interval or cfg.eval_interval
        if cfg.checkpoint_dir and (self.step % interval == 0 or self.step == cfg.max_steps):
            self.save_checkpoint()
        if cfg.patience is not None and self._bad_evals >= cfg.patience:
            say(f"early stop: no improvement for {cfg.patience} evaluations")
            return True
        return False

    def _record(self, **values) -> None:
        start, before = getattr(self, "_clock", (time.perf_counter(), 0.0))
        values["elapsed"] = before + time.perf_counter() - start
        self.history.setdefault("elapsed", [None] * len(self.history["step"]))  # old checkpoints
        for key in self.history:
            self.history[key].append(values.get(key))

    def _progress_bar(self):
        if not self.config.progress:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        return tqdm(
            total=self.config.max_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            leave=False,
            file=sys.stderr,
        )

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self):
        opt_arrays, opt_meta = optimizer_state_to_flat(self.optimizer.state_dict())
        state = {
            "step": self.step,
            "optimizer": opt_meta,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": self.rng.bit_generator.state,
            "global_rng": nt_random.get_rng_state(),
            "history": self.history,
            "best_val": self.best_val,
            "bad_evals": self._bad_evals,
            "train_config": asdict(self.config),
            **self.extra_state,
        }
        state = _jsonable(state)
        root = self.config.checkpoint_dir
        try:
            return ckpt.save_checkpoint(root, self.step, self.model.state_dict(), opt_arrays, state)
        except OSError as exc:  # a full disk, a read-only mount: say what survives
            kept = ckpt.latest_checkpoint(root)
            kept = f"the last good checkpoint {kept} is kept" if kept else "no checkpoint is kept"
            raise OSError(
                exc.errno, f"could not write the step-{self.step} checkpoint in {root} "
                f"({exc.strerror or exc}); {kept}",
            ) from exc  # fmt: skip

    def resume(self, path=None, say=None, check_state=None) -> None:
        """Restore everything from a checkpoint (default: the newest in ``checkpoint_dir`` that
        loads; ``say`` is told about any damaged one skipped). ``check_state(state)`` may refuse
        the checkpoint (raise ValueError) before anything is loaded into the model."""
        model_state, opt_arrays, state = ckpt.load_checkpoint(
            path or self.config.checkpoint_dir, say=say
        )
        if check_state is not None:
            check_state(state)
        self.model.load_state_dict(model_state)
        self._load_optimizer_state(optimizer_state_from_flat(opt_arrays, state["optimizer"]))
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.rng.bit_generator.state = state["rng"]
        nt_random.set_rng_state(state["global_rng"])
        self.history = state["history"]
        self.best_val = float(state["best_val"])
        self._bad_evals = int(state["bad_evals"])

    def _load_optimizer_state(self, state_dict: dict) -> None:
        """(A hook: ``DistributedTrainer`` keeps the full state read here to pass it on.)"""
        self.optimizer.load_state_dict(state_dict)


def _jsonable(obj):
    """NumPy scalars and inf -> plain JSON values (inf is kept as a string)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and math.isinf(obj):
        return obj  # json writes Infinity, which json.loads reads back
    return obj
