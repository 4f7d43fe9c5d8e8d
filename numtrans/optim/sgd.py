"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay.

For each parameter ``p`` with gradient ``g`` (PyTorch's ``torch.optim.SGD``, in its order)::

    g = g + weight_decay * p                      # L2 penalty folded into the gradient
    if momentum != 0:
        b = g                                     # first step: the buffer starts as g itself
        b = momentum * b + (1 - dampening) * g    # later steps
        g = g + momentum * b   if nesterov  else  b
    p = p - lr * g

The momentum buffer ``b`` is the optimiser state (``state[p]['momentum_buffer']``).
"""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    """``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)``.

    >>> import numtrans as nt
    >>> w = nt.tensor([1.0, 2.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1)
    >>> (w * w).sum().backward()      # grad = 2w = [2, 4]
    >>> opt.step()
    >>> w.data
    array([0.8, 1.6], dtype=float32)
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        super()._check_group(group)
        if not group["momentum"] >= 0.0:
            raise ValueError(f"invalid momentum {group['momentum']!r}: must be >= 0")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires momentum > 0 and dampening = 0")

    def _update(self, p, grad: np.ndarray, group: dict) -> None:
        lr, wd = group["lr"], group["weight_decay"]
        momentum, dampening = group["momentum"], group["dampening"]
        d, d_is_scratch = grad, False  # the direction; p.grad itself is never modified
        if wd != 0:
            d = np.multiply(p.data, wd, out=self._workspace(p, 0))  # g + wd * p in scratch
            d += grad
            d_is_scratch = True
        if momentum != 0:
            state = self.state.setdefault(p, {})
            buf = state.get("momentum_buffer")
            if buf is None:
                # PyTorch starts the buffer at g (not at 0, and without dampening), so the
                # first momentum step equals a plain SGD step.
                buf = state["momentum_buffer"] = np.array(d, dtype=p.dtype, copy=True)
            else:
                buf *= momentum
                if dampening == 0:
                    buf += d
                else:
                    buf += np.multiply(d, 1 - dampening, out=self._workspace(p, 1))
            if group["nesterov"]:
                # look ahead along the momentum: g + momentum * b
                ahead = np.multiply(buf, momentum, out=self._workspace(p, 1))
                ahead += d
                d, d_is_scratch = ahead, True
            else:
                d, d_is_scratch = buf, False  # the buffer is state: must not be scaled
        if d_is_scratch:
            d *= lr
        else:
            d = np.multiply(d, lr, out=self._workspace(p, 1))
        p.data -= d
