"""Check analytic gradients against finite differences (in float64).

For a function ``out = fn(*inputs)`` we fix a random "upstream gradient" ``v`` of the output's
shape and compare, for every element x_j of every input,

    analytic:  dL/dx_j from ``backward``, where L = sum(v * out)
    numeric:   (L(x_j + eps) - L(x_j - eps)) / (2 eps)        (central difference, error O(eps^2))

``gradcheck_direction`` is the cheap version for whole layers and models: one random direction d
over all inputs at once, comparing sum_j dL/dx_j d_j with (L(x + eps d) - L(x - eps d)) / (2 eps).
Inputs are perturbed in place (so parameters of a model can be passed as inputs) and restored.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .grad_mode import no_grad


class GradcheckError(AssertionError):
    """Raised when analytic and numeric gradients disagree; the message names the worst element."""


def _prepare(inputs):
    inputs = tuple(inputs) if isinstance(inputs, (list, tuple)) else (inputs,)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input Tensor with requires_grad=True")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(
                f"gradcheck needs float64 inputs for accurate finite differences, got {t.dtype}"
            )
    return inputs, checked


def _projected(fn, inputs, v):
    with no_grad():
        out = fn(*inputs)
    return float(np.sum(v * out.data))


def _analytic(fn, inputs, checked, seed):
    for t in checked:
        t.grad = None
    out = fn(*inputs)
    v = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(v)
    grads = [np.zeros(t.shape) if t.grad is None else t.grad.copy() for t in checked]
    for t in checked:
        t.grad = None
    return out, v, grads


def gradcheck(
    fn,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-7,
    rtol: float = 1e-5,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Elementwise finite-difference check of ``fn``'s gradients w.r.t. every input that
    requires grad. Returns True, or raises ``GradcheckError`` naming the worst element."""
    inputs, checked = _prepare(inputs)
    out, v, grads = _analytic(fn, inputs, checked, seed)
    worst = None
    for i, (t, analytic) in enumerate(zip(checked, grads)):
        flat = t.data.reshape(-1)  # a view: writing into it perturbs the input in place
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = _projected(fn, inputs, v)
            flat[j] = orig - eps
            minus = _projected(fn, inputs, v)
            flat[j] = orig
            numeric = (plus - minus) / (2 * eps)
            got = analytic.reshape(-1)[j]
            excess = abs(got - numeric) - (atol + rtol * abs(numeric))
            if worst is None or excess > worst[0]:
                worst = (excess, i, np.unravel_index(j, t.shape), numeric, got)
    if worst[0] > 0:
        _, i, index, expected, got = worst
        message = (
            f"gradcheck failed for {getattr(fn, '__name__', 'fn')} (output op '{out._op}'): "
            f"input {i} (shape {checked[i].shape}) at index {tuple(int(k) for k in index)}: "
            f"numeric {expected:.10g}, analytic {got:.10g}"
        )
        if raise_exception:
            raise GradcheckError(message)
        return False
    return True


def gradcheck_direction(
    fn,
    inputs,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    n_directions: int = 2,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Directional-derivative check: cheap enough for whole models (2 forwards per direction)."""
    inputs, checked = _prepare(inputs)
    out, v, grads = _analytic(fn, inputs, checked, seed)
    rng = np.random.default_rng(seed + 1)
    for k in range(n_directions):
        dirs = [rng.standard_normal(t.shape) for t in checked]
        analytic = sum(float(np.sum(g * d)) for g, d in zip(grads, dirs))
        originals = [t.data.copy() for t in checked]
        for t, d, o in zip(checked, dirs, originals):
            t.data[...] = o + eps * d
        plus = _projected(fn, inputs, v)
        for t, d, o in zip(checked, dirs, originals):
            t.data[...] = o - eps * d
        minus = _projected(fn, inputs, v)
        for t, o in zip(checked, originals):
            t.data[...] = o
        numeric = (plus - minus) / (2 * eps)
        if abs(analytic - numeric) > atol + rtol * abs(numeric):
            message = (
                f"directional gradcheck failed for {getattr(fn, '__name__', 'fn')} "
                f"(output op '{out._op}'), direction {k}: numeric {numeric:.10g}, "
                f"analytic {analytic:.10g}"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True
