"""Learning-rate schedules: set ``group['lr']`` of an optimiser from the step count.

Every schedule here is a closed formula ``lr = f(base_lr, last_epoch)``; ``base_lr`` is each group's
lr when the scheduler was made (kept in ``group['initial_lr']``, as in PyTorch).

Step counting follows ``torch.optim.lr_scheduler`` exactly::

    sched = WarmupCosineLR(opt, warmup_steps=100, total_steps=1000)  # sets lr = f(0): last_epoch 0
    for batch in data:
        loss = ...; loss.backward()
        opt.step()          # uses f(last_epoch): f(0) for the first update
        opt.zero_grad()
        sched.step()        # last_epoch += 1, lr = f(last_epoch)

so the ``k``-th optimiser step (counting from 0) runs with ``f(k)``. Call ``sched.step()`` *after*
``opt.step()``; calling it before skips ``f(0)``.
"""

from __future__ import annotations

import math

from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses implement ``_lr(base_lr, epoch)``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a numtrans Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param_groups[{i}] has no 'initial_lr': resuming a scheduler with "
                        "last_epoch >= 0 needs the optimizer state saved alongside it"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()  # like PyTorch: last_epoch becomes 0 and lr = f(0)

    def _lr(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The learning rates for the current ``last_epoch``."""
        return [self._lr(base, self.last_epoch) for base in self.base_lrs]

    def step(self) -> None:
        """Advance one step and write the new learning rates into the optimiser's groups."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the latest ``step`` (one per parameter group)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimiser (and functions): plain numbers and lists, JSON-friendly."""
        return {
            k: list(v) if isinstance(v, list) else v
            for k, v in self.__dict__.items()
            if k not in ("optimizer", "lr_lambdas")
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the step count and base lrs; also writes the saved current lrs into the
        optimiser's groups, so it does not matter whether the optimiser was loaded first."""
        self.__dict__.update(
            {k: list(v) if isinstance(v, list) else v for k, v in state_dict.items()}
        )
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(last_epoch)``; one function, or a list with one per group.

    The functions are not part of ``state_dict`` (code is not data): re-create the scheduler
    with the same functions, then load its state.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"expected {n} lr_lambdas (one per group), got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]


def _warmup_factor(epoch: int, warmup_steps: int, start_factor: float) -> float:
    """Linear ramp from ``start_factor`` (epoch 0) to 1 (epoch ``warmup_steps``), like LinearLR."""
    return start_factor + (1.0 - start_factor) * min(epoch, warmup_steps) / warmup_steps


def _check_warmup(warmup_steps: int, start_factor: float) -> None:
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if not 0.0 <= start_factor <= 1.0:
        raise ValueError(f"start_factor must be in [0, 1], got {start_factor}")


class WarmupCosineLR(LRScheduler):
    """Linear warmup, then cosine decay from ``base_lr`` to ``min_lr``; ``min_lr`` afterwards.

    With ``w = warmup_steps``, ``T = total_steps`` and ``e = last_epoch``::

        e <  w:      lr = base_lr * (start_factor + (1 - start_factor) * e / w)
        w <= e <= T: lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * (e - w) / (T - w))) / 2
        e >  T:      lr = min_lr

    ``min_lr`` is an absolute learning rate (PyTorch's ``eta_min``). ``start_factor=0`` (the
    default, as Hugging Face's cosine schedule) makes the very first update use lr 0. Up to ``T``
    this equals ``SequentialLR([LinearLR(start_factor, total_iters=w), CosineAnnealingLR(T_max=T-w,
    eta_min=min_lr)], milestones=[w])`` for ``start_factor > 0``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int,
        total_steps: int,
        min_lr: float = 0.0,
        start_factor: float = 0.0,
        last_epoch: int = -1,
    ):
        _check_warmup(warmup_steps, start_factor)
        if total_steps <= warmup_steps:
            raise ValueError(
                f"total_steps ({total_steps}) must be larger than warmup_steps ({warmup_steps})"
            )
        if not min_lr >= 0:
            raise ValueError(f"min_lr must be >= 0, got {min_lr}")
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.min_lr = min_lr
        self.start_factor = start_factor
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr: float, epoch: int) -> float:
        w, T = self.warmup_steps, self.total_steps
        if epoch < w:
            return base_lr * _warmup_factor(epoch, w, self.start_factor)
        if epoch > T:
            return self.min_lr
        cosine = 1 + math.cos(math.pi * (epoch - w) / (T - w))  # 2 -> 0 over the decay
        return self.min_lr + (base_lr - self.min_lr) * cosine / 2


class WarmupConstantLR(LRScheduler):
    """Linear warmup (as in ``WarmupCosineLR``) to ``base_lr``, then constant.

    ``warmup_steps=0`` keeps the lr constant. For ``start_factor > 0`` this equals PyTorch's
    ``LinearLR(start_factor=start_factor, end_factor=1, total_iters=warmup_steps)``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 0,
        start_factor: float = 0.0,
        last_epoch: int = -1,
    ):
        _check_warmup(warmup_steps, start_factor)
        self.warmup_steps = int(warmup_steps)
        self.start_factor = start_factor
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr: float, epoch: int) -> float:
        if epoch >= self.warmup_steps:
            return base_lr
        return base_lr * _warmup_factor(epoch, self.warmup_steps, self.start_factor)


class NoamLR(LRScheduler):
    """The original Transformer's schedule (Vaswani et al., 2017, section 5.3)::

        s  = last_epoch + 1        # the paper's step_num: the first update is step 1
        lr = base_lr * factor * d_model**-0.5 * min(s**-0.5, s * warmup_steps**-1.5)

    Linear increase for ``warmup_steps`` updates, then decay as ``1/sqrt(s)``; the peak, at
    ``s = warmup_steps``, is ``base_lr * factor / sqrt(d_model * warmup_steps)``. Create the
    optimiser with ``lr=1.0`` so the schedule alone sets the learning rate, as in the paper
    (with ``Adam(betas=(0.9, 0.98), eps=1e-9)``). Equals PyTorch's ``LambdaLR`` with
    ``lambda e: factor * d_model**-0.5 * min((e + 1)**-0.5, (e + 1) * warmup_steps**-1.5)``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        d_model: int,
        warmup_steps: int = 4000,
        factor: float = 1.0,
        last_epoch: int = -1,
    ):
        if d_model <= 0 or warmup_steps <= 0:
            raise ValueError(
                f"d_model and warmup_steps must be positive, got {d_model} and {warmup_steps}"
            )
        self.d_model = int(d_model)
        self.warmup_steps = int(warmup_steps)
        self.factor = factor
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr: float, epoch: int) -> float:
        s = epoch + 1
        rate = self.factor * self.d_model**-0.5 * min(s**-0.5, s * self.warmup_steps**-1.5)
        return base_lr * rate
