"""Fit the two polynomials of the float32 GELU kernel (layers_kernels.cpp, ``phi_cdf``).

    |z| < 1:   erf(z)  ~ z P(z^2),              P of degree 6, fitted to erf(z) / z on [0, 1]
    |z| >= 1:  erfc(z) ~ exp(-z^2) Q(t),        t = 1 / (1 + 0.47047 z), Q of degree 8, fitted
                                                to erfc(z) exp(z^2) on [1, 10]

Weighted least squares on Chebyshev nodes (nearly minimax, and no Remez iteration to explain),
with weights 1 / f so that the relative error is what is minimised. The substitution t is
Abramowitz & Stegun's 7.1.26; their five coefficients reach 1.5e-7, too coarse for float32.

    python csrc/cpu/fit_erf.py     # prints the coefficients (highest degree first) and errors

Needs only NumPy and the standard library's math.erf / math.erfc (exact to float64 rounding).
"""

import math

import numpy as np

P = np.polynomial.polynomial


def chebyshev_nodes(a: float, b: float, n: int) -> np.ndarray:
    k = np.arange(n)
    return (a + b) / 2 + (b - a) / 2 * np.cos(np.pi * (k + 0.5) / n)


def fit(x: np.ndarray, f: np.ndarray, degree: int) -> np.ndarray:
    return P.polyfit(x, f, degree, w=1 / f)


def main() -> None:
    erf, erfc = np.vectorize(math.erf), np.vectorize(math.erfc)
    u = chebyshev_nodes(0.0, 1.0, 400)  # u = z^2
    p = fit(u, erf(np.sqrt(u)) / np.sqrt(u), 6)
    z = chebyshev_nodes(1.0, 10.0, 600)
    q = fit(1 / (1 + 0.47047 * z), erfc(z) * np.exp(z * z), 8)

    zs = np.linspace(1e-6, 1, 100001)
    err_p = np.max(np.abs(zs * P.polyval(zs * zs, p) / erf(zs) - 1))
    zl = np.linspace(1, 10, 100001)
    err_q = np.max(np.abs(P.polyval(1 / (1 + 0.47047 * zl), q) / (erfc(zl) * np.exp(zl * zl)) - 1))
    print("P (z^12 ... z^0):", ", ".join(f"{c:.9e}f" for c in p[::-1]))
    print("Q (t^8 ... t^0): ", ", ".join(f"{c:.9e}f" for c in q[::-1]))
    print(f"max relative error: P {err_p:.2e}, Q {err_q:.2e}")


if __name__ == "__main__":
    main()
