"""The error function erf, which NumPy lacks, to float64 precision (needed by the exact GELU).

    erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt

The compiled module computes it with the C library (fast). Without it, ``erf_numpy`` evaluates
two classic expansions, each where it converges quickly and without cancellation:

* |x| < 2.5:  erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n x (2x^2)^n / (1*3*5*...*(2n+1))
  (all terms positive, summed in nested form);
* |x| >= 2.5: erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
  (Laplace's continued fraction, evaluated bottom-up), and erf = 1 - erfc.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backends

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erf_numpy(x: np.ndarray) -> np.ndarray:
    x64 = np.asarray(x, dtype=np.float64)
    ax = np.abs(x64)
    out = np.empty_like(x64)
    small = ax < 2.5
    # Series, evaluated in nested (Horner) form from the smallest term up, which keeps the
    # rounding error at a few ulp: sum_n x (2x^2)^n / (2n+1)!! = x (1 + c1 (1 + c2 (1 + ...))),
    # c_n = 2x^2 / (2n+1). 64 terms reach float64 precision for |x| < 2.5.
    xs = ax[small]
    two_x2 = 2.0 * xs * xs
    nested = np.ones_like(xs)
    for n in range(64, 0, -1):
        nested = 1.0 + nested * (two_x2 / (2 * n + 1))
    out[small] = _TWO_OVER_SQRT_PI * np.exp(-xs * xs) * (xs * nested)
    # continued fraction for erfc; 80 levels reach float64 precision for x >= 2.5
    xl = ax[~small]
    frac = np.zeros_like(xl)
    for k in range(80, 0, -1):
        frac = (k / 2.0) / (xl + frac)
    with np.errstate(over="ignore", under="ignore"):  # huge x: exp(-x^2) is 0, erf is 1
        out[~small] = 1.0 - np.exp(-xl * xl) / math.sqrt(math.pi) / (xl + frac)
    out = np.copysign(out, x64)
    return out.astype(np.float32) if np.asarray(x).dtype == np.float32 else out


def erf(x: np.ndarray) -> np.ndarray:
    """erf of a float array, keeping its dtype: the C library's when ``backends.resolve()`` picks
    the compiled module, else ``erf_numpy`` (also for dtypes the module does not take)."""
    x = np.asarray(x)
    use_native = x.dtype in (np.float32, np.float64) and backends.resolve(dtype=x.dtype) == "cpu"
    native = getattr(backends.get("cpu"), "erf", None) if use_native else None
    if native is not None:
        return native(x)
    return erf_numpy(x)
