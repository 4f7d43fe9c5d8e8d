"""Shared by the benchmark scripts: say which BLAS kernel ran, and pin its thread count."""

from __future__ import annotations

import numpy as np


def blas_line() -> str:
    """One line naming NumPy's BLAS library, kernel and thread count (via threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return "NumPy BLAS: (threadpoolctl not installed)"
    for info in threadpoolctl.threadpool_info():
        if info.get("user_api") == "blas":
            return (
                f"NumPy {np.__version__} BLAS: {info.get('internal_api')} {info.get('version')}, "
                f"kernel {info.get('architecture')}, {info.get('num_threads')} threads"
            )
    return "NumPy BLAS: not found by threadpoolctl"


def limit_blas_threads(n: int):
    """A threadpoolctl limiter holding NumPy's BLAS at ``n`` threads (None without threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_limits(limits=n, user_api="blas")
