"""Which compute backends this installation has, and why a missing one is missing.

numtrans always works in NumPy. Two optional compiled modules can speed up attention:

* ``numtrans._cpu``  C++ kernels (OpenMP), built when a C++ compiler was found at install time;
* ``numtrans._cuda`` CUDA kernels, built when nvcc was found, usable when a GPU is present.

>>> import numtrans
>>> "numpy" in numtrans.backends.available()
True
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from importlib import resources

_NAMES = ("numpy", "cpu", "cuda")


def _build_info() -> dict[str, str]:
    """Read ``_build_info.txt`` written by CMake at install time (empty if never built)."""
    try:
        text = resources.files("numtrans").joinpath("_build_info.txt").read_text()
    except (FileNotFoundError, OSError):
        return {}
    info = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key:
            info[key.strip()] = value.strip()
    return info


@cache
def _probe(name: str) -> tuple[object | None, str]:
    """Import one backend; return (module or None, reason)."""
    if name == "numpy":
        return importlib.import_module("numpy"), "always available"
    info = _build_info()
    try:
        module = importlib.import_module(f"numtrans._{name}")
    except ImportError as exc:
        built = info.get(name)
        if built and built != "built":
            return None, built
        if not info:
            return None, "not built (no compiled extension in this installation: NumPy only)"
        return None, f"built but failed to import: {exc}"
    if name == "cuda":
        try:
            count = module.device_count()
        except RuntimeError as exc:  # pragma: no cover - depends on the driver
            return None, f"module loads but the CUDA runtime failed: {exc}"
        if count == 0:
            return None, "module built, but no GPU is visible at run time"
        return module, f"{count} GPU(s) visible"
    threads = module.get_num_threads()
    return (
        module,
        f"built ({info.get('cpu_compiler', '?')}, OpenMP {info.get('openmp', '?')}, {threads} threads)",
    )


def available() -> list[str]:
    """Names of the usable backends, e.g. ``['numpy', 'cpu']``."""
    return [name for name in _NAMES if _probe(name)[0] is not None]


def is_available(name: str) -> bool:
    if name not in _NAMES:
        raise ValueError(f"unknown backend {name!r}; expected one of {_NAMES}")
    return _probe(name)[0] is not None


def reason(name: str) -> str:
    """Why a backend is (un)available, in words."""
    if name not in _NAMES:
        raise ValueError(f"unknown backend {name!r}; expected one of {_NAMES}")
    return _probe(name)[1]


def get(name: str):
    """The compiled module behind a backend; raises a clear error if it is missing."""
    module, why = _probe(name)
    if module is None:
        raise RuntimeError(f"backend {name!r} is not available: {why}")
    return module


def default() -> str:
    """The backend to use when ``backend="auto"``: ``NUMTRANS_BACKEND`` if set, else the fastest."""
    forced = os.environ.get("NUMTRANS_BACKEND", "").strip().lower()
    if forced and forced != "auto":
        if forced not in _NAMES:
            raise ValueError(f"NUMTRANS_BACKEND={forced!r}; expected one of {_NAMES} or 'auto'")
        return forced
    for name in ("cpu", "numpy"):
        if is_available(name):
            return name
    return "numpy"


def set_num_threads(n: int) -> None:
    """Threads used by the native CPU kernels (OpenMP). NumPy's BLAS threads are not changed."""
    if is_available("cpu"):
        get("cpu").set_num_threads(int(n))


def get_num_threads() -> int:
    return get("cpu").get_num_threads() if is_available("cpu") else 1


def show_config() -> str:
    """Print and return a short report: versions, build options and each backend's status."""
    import platform

    import numpy as np

    from . import __version__

    lines = [
        f"numtrans {__version__} (Python {platform.python_version()}, NumPy {np.__version__})",
        "backends:",
    ]
    for name in _NAMES:
        mark = "yes" if is_available(name) else "no "
        lines.append(f"  {name:<6} {mark}  {reason(name)}")
    info = _build_info()
    if info:
        lines.append("build: " + ", ".join(f"{k}={v}" for k, v in info.items() if k not in _NAMES))
    report = "\n".join(lines)
    print(report)
    return report
