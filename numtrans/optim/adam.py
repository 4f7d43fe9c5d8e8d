"""Adam and AdamW: per-parameter step sizes from running moments of the gradient.

For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...`` (PyTorch's order)::

    Adam  (L2):        g = g + weight_decay * p            # decay inside the gradient
    AdamW (decoupled): p = p * (1 - lr * weight_decay)     # decay the weights directly, first
    m = b1 * m + (1 - b1) * g                              # computed as m += (1 - b1) * (g - m)
    v = b2 * v + (1 - b2) * g * g
    v_max = max(v_max, v); use v_max for v                 # only with amsgrad=True
    m_hat = m / (1 - b1**t)                                # bias corrections: m, v start at 0
    v_hat = v / (1 - b2**t)
    p = p - lr * m_hat / (sqrt(v_hat) + eps)

PyTorch evaluates the last line as ``p -= (lr / (1 - b1**t)) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``
and so do we, which keeps float64 results equal to ``torch.optim`` to rounding.

Why AdamW: with Adam's L2 term the decay ``wd * p`` is divided by ``sqrt(v_hat)`` like any gradient,
so weights with large gradients are barely decayed. AdamW (Loshchilov & Hutter, 2019) shrinks every
weight by the same factor ``1 - lr * wd`` per step, independent of the adaptive scaling.
State per parameter: ``step`` (int), ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq``.
"""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)``.

    ``weight_decay`` here is an L2 penalty added to the gradient; for decoupled decay use ``AdamW``.
    """

    _decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(betas)
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"invalid beta parameter at index {i}: {b!r}, must be in [0, 1)")
        if not group["eps"] >= 0.0:
            raise ValueError(f"invalid eps {group['eps']!r}: must be >= 0")

    def _update(self, p, grad: np.ndarray, group: dict) -> None:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        state = self.state.get(p)
        if state is None:  # lazily: a parameter that never gets a gradient costs no memory
            state = self.state[p] = {
                "step": 0,
                "exp_avg": np.zeros_like(p.data),
                "exp_avg_sq": np.zeros_like(p.data),
            }
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        t = state["step"]

        if wd != 0:
            if self._decoupled:
                p.data *= 1 - lr * wd
            else:
                g = np.multiply(p.data, wd, out=self._workspace(p, 0))  # g + wd * p, scratch
                g += grad
                grad = g

        tmp = self._workspace(p, 1)
        # m = b1 m + (1 - b1) g, written as PyTorch's lerp: m += (1 - b1) (g - m)
        np.subtract(grad, m, out=tmp)
        tmp *= 1 - beta1
        m += tmp
        # v = b2 v + (1 - b2) g^2
        v *= beta2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - beta2
        v += tmp
        if group["amsgrad"]:
            # keep the largest v seen so the effective step size never grows (Reddi et al., 2018)
            v_max = state.get("max_exp_avg_sq")
            if v_max is None:  # amsgrad switched on after the state was created
                v_max = state["max_exp_avg_sq"] = np.zeros_like(p.data)
            v = np.maximum(v_max, v, out=v_max)

        bias_correction1 = 1 - beta1**t
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5
        step_size = lr / bias_correction1
        # denom = sqrt(v) / sqrt(1 - b2^t) + eps  (eps is added after the correction, as in PyTorch)
        denom = np.sqrt(v, out=tmp)
        denom /= bias_correction2_sqrt
        denom += eps
        # p -= step_size * m / denom
        update = np.divide(m, denom, out=tmp)
        update *= step_size
        p.data -= update


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False)``.

    Adam with decoupled weight decay: ``p *= 1 - lr * weight_decay`` before the Adam update.
    Use parameter groups (``param_groups_for_weight_decay``) to exempt biases and norm weights.

    >>> import numtrans as nt
    >>> w = nt.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.0)
    >>> (w * w).sum().backward()
    >>> opt.step()                    # first step: m_hat / sqrt(v_hat) = sign(g), so p -= lr
    >>> w.data.round(6)
    array([ 0.9, -1.9], dtype=float32)
    """

    _decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
