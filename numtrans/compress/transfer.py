"""Intermediate-layer distillation: the student copies the teacher's insides, not only its logits.

Two terms, each added to ``distillation_loss`` with its own weight (``numtrans.recipes.distill``):

* **hidden states** (TinyBERT, Jiao et al. 2020, its L_hidn): student layer m imitates teacher
  layer g(m) = m N / M (N teacher layers, M student layers; m = 0 is the embedding output)::

      L_hidden = 1/(M+1) sum_m  sum_{b,t real} ||h^s_m[b,t] - h^t_{g(m)}[b,t]||^2 / (n_real C)

  TinyBERT multiplies the student's states by a learned W_h (C_s -> C_t); our students are the
  teacher with layers left out, the same width, so W_h is the identity and is left out. Padding
  positions are masked out (TinyBERT averages over them too).

* **attention distributions** (MiniLM, Wang et al. 2020, its L_AT): the student's last layer's
  attention probabilities match the teacher's last layer's, head by head::

      L_attn = 1/(B H n_q) sum_{b,h,q real} KL(A^t[b,h,q,:] || A^s[b,h,q,:])

  MiniLM adds a second term, the value relation KL(softmax(V_t V_t^T / sqrt d) ||
  softmax(V_s V_s^T / sqrt d)), and distils the attention alone, before fine-tuning, with no
  logit term; here the attention term joins the soft-target and label terms during
  task distillation, and the value relation is left out.

Shapes: hidden states (B, T, C); attention (B, H, T, T); ``attention_mask`` (B, T), 1 = token.
Student inputs are Tensors (they get gradients); teacher inputs are arrays (constants).
"""

from __future__ import annotations

import numpy as np

from ..tensor import make_result


def _data(x) -> np.ndarray:
    return np.asarray(getattr(x, "data", x))


def layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """TinyBERT's uniform mapping g(m) = m N / M for m = 0..M: 3 of 6 -> [0, 2, 4, 6]."""
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(
            f"a student of {student_layers} layers cannot map onto a teacher of {teacher_layers}"
        )
    return [m * teacher_layers // student_layers for m in range(student_layers + 1)]


def hidden_state_loss(student_hidden, teacher_hidden, attention_mask=None):
    """Mean over mapped layers of the per-token, per-feature squared error (TinyBERT's L_hidn).

    ``student_hidden``: M + 1 Tensors (B, T, C) (``output_hidden_states``); ``teacher_hidden``:
    the N + 1 teacher arrays; each student entry m is compared with teacher entry m N / M."""
    if len(student_hidden) < 2 or len(teacher_hidden) < 2:
        raise ValueError("hidden_state_loss needs the embedding output and at least one layer")
    pairs = layer_map(len(student_hidden) - 1, len(teacher_hidden) - 1)
    B, T, C = student_hidden[0].shape
    m = np.ones((B, T)) if attention_mask is None else _data(attention_mask)
    if m.shape != (B, T):
        raise ValueError(f"attention_mask {m.shape} does not match the hidden states {(B, T)}")
    weight = (m / max(float(m.sum()) * C, 1.0)).astype(student_hidden[0].dtype)[:, :, None]
    total = None
    for s, g in zip(student_hidden, pairs):
        t = _data(teacher_hidden[g])
        if t.shape != s.shape:
            raise ValueError(f"student hidden {s.shape} != teacher hidden {t.shape}")
        diff = s - t.astype(s.dtype)
        term = (diff * diff * weight).sum()
        total = term if total is None else total + term
    return total * (1.0 / len(pairs))


def attention_kl_loss(student_attn, teacher_attn, attention_mask=None):
    """mean over real (b, h, q) of KL(A_t || A_s) over the keys (MiniLM's L_AT).

    Gradient w.r.t. the student's probabilities: -A_t / A_s, divided by the count; through
    the softmax that produced A_s it becomes A_s - A_t, the familiar cross-entropy gradient."""
    a_s = student_attn.data
    a_t = _data(teacher_attn).astype(a_s.dtype)
    if a_s.ndim != 4 or a_t.shape != a_s.shape:
        raise ValueError(
            f"student attention {a_s.shape} and teacher attention {a_t.shape} must both be "
            "(B, H, T, T) and equal"
        )
    B, H, T, _ = a_s.shape
    rows = np.ones((B, T)) if attention_mask is None else _data(attention_mask)
    if rows.shape != (B, T):
        raise ValueError(f"attention_mask {rows.shape} does not match the attention {(B, T)}")
    rows = np.broadcast_to(rows.astype(bool)[:, None, :], (B, H, T))  # real queries only
    count = max(int(rows.sum()), 1)
    tiny = np.finfo(a_s.dtype).tiny
    safe_s = np.maximum(a_s, tiny)  # masked keys: A_t = 0 there, so they add 0 either way
    used = (a_t > 0) & rows[..., None]
    log_ratio = np.where(used, np.log(np.where(used, a_t, 1.0)) - np.log(safe_s), 0.0)
    value = np.asarray((a_t * log_ratio).sum() / count, dtype=a_s.dtype)

    def backward(g):
        return (np.where(used, -g * a_t / safe_s, 0.0).astype(a_s.dtype) / count,)

    return make_result(value, (student_attn,), backward, "attention_kl_loss")
