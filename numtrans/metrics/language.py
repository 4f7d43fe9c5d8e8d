"""Language-model metrics: perplexity from negative log-likelihoods (NLL, in nats).

A model assigns the next token probability p(x_t | x_<t). Its per-token NLL is
``-ln p(x_t | x_<t)`` and training minimises the mean NLL (the cross-entropy loss). The
perplexity is

    PPL = exp(mean NLL) = exp(-(1/T) sum_t ln p(x_t | x_<t))

the inverse geometric mean of the probabilities: a PPL of 20 means the model is, on
average, as unsure as if it picked uniformly among 20 tokens. A uniform model over a
vocabulary of V tokens has PPL = V; a perfect model has PPL = 1.
"""

from __future__ import annotations

import numpy as np


def perplexity(nll, mask=None) -> float:
    """Perplexity ``exp(mean NLL)``.

    Args:
        nll: either a scalar (an already averaged NLL in nats, e.g. the cross-entropy loss)
            or per-token NLLs of any shape, e.g. (B, T).
        mask: optional, same shape as per-token ``nll``; True (or 1) marks tokens that
            count. Padding tokens get False so they do not change the mean::

                PPL = exp(sum_t mask_t * nll_t / sum_t mask_t)

    Returns:
        The perplexity as a Python float (``inf`` if the mean NLL overflows ``exp``).
    """
    nll = np.asarray(nll, dtype=np.float64)
    if nll.size == 0:
        raise ValueError("nll is empty: there are no tokens to score")
    if not np.all(np.isfinite(nll)):
        raise ValueError("nll holds NaN or infinity")
    if mask is None:
        mean_nll = nll.mean()
    else:
        if nll.ndim == 0:
            raise ValueError(
                "mask needs per-token nll values, but nll is a scalar (already averaged)"
            )
        mask = np.asarray(mask)
        if mask.shape != nll.shape:
            raise ValueError(f"mask shape {mask.shape} does not match nll shape {nll.shape}")
        if mask.dtype != np.bool_:
            if not np.all((mask == 0) | (mask == 1)):
                raise ValueError("mask must be boolean or hold only 0 and 1")
            mask = mask.astype(bool)
        if not mask.any():
            raise ValueError("mask selects no tokens: perplexity of zero tokens is undefined")
        mean_nll = nll[mask].mean()
    with np.errstate(over="ignore"):
        return float(np.exp(mean_nll))
