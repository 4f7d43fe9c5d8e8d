"""DPO training: a policy, a frozen reference, and batches of (chosen, rejected) answers.

One step, for a batch of B pairs (all 2B sequences in one forward, chosen rows first):

    logp(y | x)  = sum over the response's tokens of log p(token | everything before it)
    loss, r_w, r_l = dpo_loss(logp_pi(y_w), logp_pi(y_l), logp_ref(y_w), logp_ref(y_l), beta)

Only the response tokens count (the prompt's labels are ``IGNORE_INDEX``, as in SFT). The
reference model is a frozen copy of the SFT model: it runs under ``no_grad``, none of its
parameters require grad, and the optimizer never sees them.

Logged, as TRL logs them: the reward margin ``r_w - r_l`` (mean), the reward accuracy (share of
pairs with ``r_w > r_l``), and an implicit KL. The pairs are samples of the SFT model, which is
the reference, so the mean over both answers of ``logp_ref(y) - logp_pi(y)`` estimates
KL(pi_ref || pi) per sequence, in nats: 0 at the start, growing as the policy moves away
(an estimate from a few samples: one batch's value can be negative). :func:`evaluate_preferences`
also reports ``token_kl``, exact per position: the mean over response positions of
KL(pi || pi_ref) = sum_v pi(v) (log pi(v) - log pi_ref(v)) given the same prefix, never < 0.

Data parallel (``train_dpo(..., world=World)``, ``numtrans dpo --ddp`` under ``mpirun -n P``):
every rank draws the same B pairs, runs the policy and the reference on its own pairs (its
chosen and rejected rows of the global batch) and weights its gradient and statistics by its
share of the pairs, so the ranks take the one-process step
(:class:`numtrans.distributed.DataParallelSteps`).
"""

from __future__ import annotations

import copy

import numpy as np

from ..autograd import no_grad
from ..distributed import DataParallelSteps, check_ranks_fit
from ..finetune.dpo import dpo_loss, sequence_logprobs
from ..functional.activations import softmax_array
from ..optim import AdamW, clip_grad_norm_
from .sft import IGNORE_INDEX, sft_example


def frozen_copy(model):
    """An independent copy of ``model`` in eval mode whose parameters require no grad."""
    ref = type(model)(copy.deepcopy(model.config))
    ref.to(next(iter(model.parameters())).dtype)  # the same precision as the policy
    ref.load_state_dict({k: np.array(v, copy=True) for k, v in model.state_dict().items()})
    ref.requires_grad_(False)
    return ref.eval()


def preference_batch(pairs, tokenizer, max_length: int):
    """(input_ids (2B, T), labels (2B, T)): rows 0..B-1 chosen, B..2B-1 rejected, right-padded."""
    rows = []
    for side in (1, 2):
        for p in pairs:
            conv = [*p[0], {"role": "assistant", "content": p[side]}]
            rows.append(sft_example(conv, tokenizer, max_length))
    width = max(len(x) for x, _ in rows)
    x = np.zeros((len(rows), width), np.int64)
    y = np.full((len(rows), width), IGNORE_INDEX, np.int64)
    for i, (xi, yi) in enumerate(rows):
        x[i, : len(xi)], y[i, : len(yi)] = xi, yi
    return x, y


def _logps(model, x, y):
    out = sequence_logprobs(model, x, y)  # (2B,)
    half = x.shape[0] // 2
    return out[:half], out[half:]


def dpo_step_stats(policy, reference, batch, beta: float):
    """(loss tensor, stats dict) for one batch; the loss carries the policy's gradient."""
    x, y = batch
    with no_grad():
        ref_c, ref_r = (t.data for t in _logps(reference, x, y))
    pol_c, pol_r = _logps(policy, x, y)
    loss, r_c, r_r = dpo_loss(pol_c, pol_r, ref_c, ref_r, beta)
    kl = float(np.mean(np.concatenate([ref_c - pol_c.data, ref_r - pol_r.data])))
    stats = {"loss": loss.item(), "reward_margin": float(np.mean(r_c - r_r)),
             "reward_accuracy": float(np.mean(r_c > r_r)), "kl": kl}  # fmt: skip
    return loss, stats


def token_kl(policy, reference, x, y) -> float:
    """Mean over the response positions (labels != IGNORE_INDEX) of KL(pi || pi_ref), nats."""
    with no_grad():
        lp, _ = policy(x)
        lr, _ = reference(x)
    lp, lr = lp.data.astype(np.float64), lr.data.astype(np.float64)
    log_p = np.log(np.maximum(softmax_array(lp), 1e-300))
    log_r = np.log(np.maximum(softmax_array(lr), 1e-300))
    kl = (np.exp(log_p) * (log_p - log_r)).sum(-1)  # (2B, T)
    keep = y != IGNORE_INDEX
    return float(kl[keep].mean()) if keep.any() else 0.0


def evaluate_preferences(policy, reference, pairs, tokenizer, beta=0.1, batch_size=8):
    """Mean of the step statistics over ``pairs`` (weighted by batch size), no training."""
    policy.eval()
    totals, n = {}, 0
    with no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            batch = preference_batch(chunk, tokenizer, policy.config.block_size)
            _, stats = dpo_step_stats(policy, reference, batch, beta)
            stats["token_kl"] = token_kl(policy, reference, *batch)
            for k, v in stats.items():
                totals[k] = totals.get(k, 0.0) + v * len(chunk)
            n += len(chunk)
    return {k: v / n for k, v in totals.items()}


STEP_STATISTICS = ("loss", "reward_margin", "reward_accuracy", "kl")  # means over the pairs


def train_dpo(policy, reference, pairs, tokenizer, steps=20, batch_size=4, lr=1e-5, beta=0.1,
              seed=0, log=None, log_every=1, world=None, zero=False):  # fmt: skip
    """Run ``steps`` DPO steps on ``pairs`` (list of (prompt, chosen, rejected)); returns the
    per-step statistics. ``log(step, stats)`` is called every ``log_every`` steps.

    ``world`` (``numtrans.distributed.init_world()``, under ``mpirun -n P``): data parallel.
    ``batch_size`` stays the global batch of pairs; each rank computes the loss of its pairs
    (policy and reference alike), weighted by its share of them, and the statistics returned
    (and logged: let rank 0 alone ``log``) are the global batch's, with the norm of the averaged
    gradient before clipping as ``grad_norm``. ``zero=True`` or 1 (with ``world``) shards
    AdamW's state over the ranks (ZeRO-1), ``zero=2`` the gradients too (ZeRO-2)."""
    if not pairs:
        raise ValueError("train_dpo needs at least one preference pair")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if zero and world is None:
        raise ValueError("zero=True shards AdamW's state over data-parallel ranks: give world=")
    if world is not None:
        check_ranks_fit(batch_size, world.size)
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = AdamW(params, lr=lr, weight_decay=0.0)
    if world is not None:
        ddp = DataParallelSteps(world, optimizer, [policy, reference], seed, zero)
        optimizer = ddp.optimizer  # (with zero, the ZeRO wrapper)
    else:
        ddp = None
    clip = clip_grad_norm_ if ddp is None else ddp.clip_grad_norm_  # (ZeRO-2: the global norm)
    rng = np.random.default_rng(seed)
    order, pos, history = rng.permutation(len(pairs)), 0, []
    policy.train()
    for step in range(1, steps + 1):
        if pos + batch_size > len(order) and pos > 0:  # a new epoch, reshuffled
            order, pos = rng.permutation(len(pairs)), 0
        chunk = [pairs[i] for i in order[pos : pos + batch_size]]
        pos += batch_size
        batch = preference_batch(chunk, tokenizer, policy.config.block_size)
        optimizer.zero_grad()
        if ddp is None:
            loss, stats = dpo_step_stats(policy, reference, batch, beta)
            if not np.isfinite(stats["loss"]):
                raise FloatingPointError(f"DPO step {step}: the loss is {stats['loss']}")
            loss.backward()
        else:
            stats = _dpo_step_on_rows(ddp, policy, reference, batch, beta, step)
        stats["grad_norm"] = float(clip(params, 1.0))
        optimizer.step()
        history.append(stats)
        if log is not None and (step % log_every == 0 or step == steps):
            log(step, stats)
    if ddp is not None:
        ddp.check_same_state("at the end")
    policy.eval()
    return history


def _pair_rows(batch, rows: slice):
    """The chosen and the rejected rows of the pairs ``rows`` of a ``preference_batch`` (the
    global batch's width kept): a ``preference_batch`` of those pairs alone."""
    x, y = batch
    half = len(x) // 2
    pick = np.r_[np.arange(half)[rows], half + np.arange(half)[rows]]
    return x[pick], y[pick]


def _dpo_step_on_rows(ddp, policy, reference, batch, beta: float, step: int) -> dict:
    """This rank's backward on its pairs of the global ``batch``, weighted by its share of the
    pairs, then the ranks' gradients averaged; returns the global batch's statistics."""
    ddp.start_step(step)
    pairs = len(batch[0]) // 2
    local = _pair_rows(batch, ddp.rows(pairs))
    weighted = np.zeros(len(STEP_STATISTICS))
    if len(local[0]):  # (fewer pairs than ranks leaves a rank without any: it adds nothing)
        weight = ddp.weight(len(local[0]) // 2, pairs)
        loss, stats = dpo_step_stats(policy, reference, local, beta)
        weighted = np.array([stats[k] for k in STEP_STATISTICS]) * weight
        if np.isfinite(weighted[0]):  # (a non-finite loss stops every rank below, alike)
            (loss if weight == 1.0 else loss * weight).backward()
    stats = dict(zip(STEP_STATISTICS, map(float, ddp.mean(weighted))))
    if not np.isfinite(stats["loss"]):
        raise FloatingPointError(f"DPO step {step}: the loss is {stats['loss']} (over all ranks)")
    ddp.average_gradients()
    return stats
