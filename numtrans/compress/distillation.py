"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): a small student learns from a teacher.

The teacher's softened distribution p_t = softmax(z_t / T) says more than the hard label: which
wrong classes are *almost* right. The student matches it with a KL term and still fits the labels:

    loss = alpha * T^2 * KL(p_t || p_s) + (1 - alpha) * CE(z_s, y),     p_s = softmax(z_s / T)
    KL(p_t || p_s) = sum_c p_t[c] (log p_t[c] - log p_s[c]),   averaged over the batch

Why T^2: d KL / d z_s = (p_s - p_t) / T, so the soft gradients shrink like 1/T as T grows;
multiplying by T^2 keeps their size comparable with the hard-label term whatever T is.

    student_logits: (N, C) Tensor      teacher_logits: (N, C) array (a constant: no gradient)
    labels: (N,) class ids             returns a scalar Tensor

``teacher_logits_cached`` runs the teacher once over fixed data and keeps the logits in a
safetensors file, so training for many epochs needs no teacher forward pass after the first.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ..functional.activations import softmax_array
from ..functional.losses import cross_entropy
from ..io import atomic_write
from ..tensor import make_result


def _log_softmax_rows(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def soft_target_loss(student_logits, teacher_logits, temperature: float = 2.0):
    """T^2 * mean_i KL(softmax(t_i / T) || softmax(s_i / T)); gradient T (p_s - p_t) / N."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    s = student_logits.data
    t = np.asarray(getattr(teacher_logits, "data", teacher_logits), dtype=s.dtype)
    if s.ndim != 2 or t.shape != s.shape:
        raise ValueError(
            f"student logits {s.shape} and teacher logits {t.shape} must both be (N, C) and equal"
        )
    T, n = float(temperature), s.shape[0]
    log_ps, log_pt = _log_softmax_rows(s / T), _log_softmax_rows(t / T)
    p_t = np.exp(log_pt)
    kl = (p_t * (log_pt - log_ps)).sum(axis=-1)  # (N,), each >= 0
    value = np.asarray(T * T * kl.mean(), dtype=s.dtype)

    def backward(g):
        # d/ds of T^2 KL = T^2 * (p_s - p_t) / T; the 1/N is the batch mean.
        return (g * T * (np.exp(log_ps) - p_t) / max(n, 1),)

    return make_result(value, (student_logits,), backward, "soft_target_loss")


def distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5):
    """alpha * T^2 * KL(p_t || p_s) + (1 - alpha) * CE(student, labels), batch means."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    soft = soft_target_loss(student_logits, teacher_logits, temperature)
    hard = cross_entropy(student_logits, labels)
    return soft * alpha + hard * (1.0 - alpha)


def teacher_probabilities(teacher_logits, temperature: float = 2.0) -> np.ndarray:
    """softmax(teacher / T): the soft targets, for display."""
    return softmax_array(np.asarray(teacher_logits) / temperature, -1)


def _fingerprint(inputs: np.ndarray) -> str:
    a = np.ascontiguousarray(inputs)
    return hashlib.sha256(str(a.shape).encode() + str(a.dtype).encode() + a.tobytes()).hexdigest()


def teacher_logits_cached(forward, inputs, batch_size: int = 32, cache: str | None = None):
    """Logits (N, C) of ``forward(batch)`` over ``inputs`` (N, ...), computed once.

    With ``cache`` (a ``.safetensors`` path) the logits are stored beside a fingerprint of the
    inputs; a later call with the same inputs loads them instead of running the teacher, and
    different inputs recompute (a stale cache is never used)."""
    from safetensors.numpy import load_file, save_file

    inputs = np.asarray(inputs)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    key = _fingerprint(inputs)
    if cache is not None and os.path.isfile(cache):
        stored = load_file(cache)
        if bytes(stored["fingerprint"]).decode() == key:
            return stored["logits"]
    parts = []
    for start in range(0, len(inputs), batch_size):
        out = forward(inputs[start : start + batch_size])
        parts.append(np.asarray(getattr(out, "data", out)))
    logits = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
    if cache is not None:
        tensors = {"logits": logits, "fingerprint": np.frombuffer(key.encode(), np.uint8).copy()}
        atomic_write(cache, lambda tmp: save_file(tensors, tmp))
    return logits
