"""Optimisers, learning-rate schedules and gradient clipping (mirroring ``torch.optim``).

A training step::

    from numtrans import optim
    opt = optim.AdamW(optim.param_groups_for_weight_decay(model.named_parameters(), 0.1), lr=3e-4)
    sched = optim.WarmupCosineLR(opt, warmup_steps=100, total_steps=5000, min_lr=3e-5)
    for x, y in batches:
        loss = loss_fn(model(x), y)
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()

Gradient accumulation (a large batch on a small memory budget): ``backward()`` *adds* into
``.grad``, so split a batch into ``k`` micro-batches, call ``(loss_i / k).backward()`` on each (the
``/ k`` turns the sum of the k mean losses into the mean over the whole batch), then clip, step
and zero the gradients once::

    for i, (x, y) in enumerate(micro_batches):
        (loss_fn(model(x), y) / k).backward()
        if (i + 1) % k == 0:
            opt.step()
            opt.zero_grad()

Checkpoints: ``arrays, meta = optimizer_state_to_flat(opt.state_dict())`` (safetensors + JSON), and
``opt.load_state_dict(optimizer_state_from_flat(arrays, meta))``.
"""

from .adam import Adam, AdamW
from .clip import clip_grad_norm_, get_total_norm
from .lr_scheduler import (
    LambdaLR,
    LRScheduler,
    NoamLR,
    WarmupConstantLR,
    WarmupCosineLR,
)
from .optimizer import Optimizer, param_groups_for_weight_decay
from .serialization import optimizer_state_from_flat, optimizer_state_to_flat
from .sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "LRScheduler",
    "LambdaLR",
    "NoamLR",
    "Optimizer",
    "WarmupConstantLR",
    "WarmupCosineLR",
    "clip_grad_norm_",
    "get_total_norm",
    "optimizer_state_from_flat",
    "optimizer_state_to_flat",
    "param_groups_for_weight_decay",
]
