"""Direct Preference Optimization (Rafailov et al., 2023): preference tuning without a reward model.

For a prompt x with a preferred answer y_w ("chosen") and a worse one y_l ("rejected"):

    r(y)  = beta * (log pi(y | x) - log pi_ref(y | x))        implicit reward, per sequence
    loss  = -log sigmoid(r(y_w) - r(y_l))                      mean over the batch

pi is the policy being trained, pi_ref a frozen copy of the SFT model. The gradient pushes the
chosen answer's log-probability up and the rejected one's down, weighted by sigmoid(r_l - r_w):
pairs the policy already orders correctly count little. ``beta`` sets how far the policy may move
away from the reference (a small beta allows a large implicit KL).
"""

from __future__ import annotations

import numpy as np

from ..functional.activations import log_softmax, logsigmoid
from ..tensor import Tensor


def dpo_loss(
    policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=0.1
):
    """All four inputs (B,) summed sequence log-probs -> (mean loss, chosen_rewards, rejected_rewards).

    The rewards are ``beta * (policy - ref)`` as plain arrays (no gradient: TRL's and rasbt's
    convention), for logging the reward margin ``chosen - rejected``.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    ref_c = np.asarray(getattr(ref_chosen_logps, "data", ref_chosen_logps))
    ref_r = np.asarray(getattr(ref_rejected_logps, "data", ref_rejected_logps))
    if not (policy_chosen_logps.shape == policy_rejected_logps.shape == ref_c.shape == ref_r.shape):
        raise ValueError("dpo_loss: the four log-prob arrays must have the same shape (B,)")
    chosen = (policy_chosen_logps - ref_c) * beta  # (B,)
    rejected = (policy_rejected_logps - ref_r) * beta
    # -log sigmoid(z) through the stable logsigmoid: sigmoid(z).log() would be -inf (and its
    # gradient NaN) once sigmoid underflows, at margins below about -104 in float32.
    loss = -logsigmoid(chosen - rejected).mean()
    return loss, chosen.data.copy(), rejected.data.copy()


def sequence_logprobs(model, input_ids, labels, ignore_index: int = -100) -> Tensor:
    """Sum of log p(labels[b, t] | input_ids[b, :t+1]) over positions whose label is not ignored.

    ``labels`` is aligned like GPT's ``targets`` (the token that follows each position), with the
    prompt's positions set to ``ignore_index``: only the response counts. Returns (B,).
    """
    labels = np.asarray(getattr(labels, "data", labels))
    logits, _ = model(input_ids)  # (B, T, V)
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"labels {labels.shape} do not match input_ids {logits.shape[:2]}")
    keep = labels != ignore_index
    safe = np.where(keep, labels, 0)[..., None]  # (B, T, 1)
    token_logps = log_softmax(logits, dim=-1).gather(-1, safe).reshape(labels.shape)  # (B, T)
    return (token_logps * keep.astype(logits.dtype)).sum(axis=-1)
