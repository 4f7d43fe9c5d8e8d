"""Which compute backends this installation has, and why a missing one is missing.

numtrans always works in NumPy. Two optional compiled modules can speed up attention:

* ``numtrans._cpu``  C++ kernels (OpenMP), built when a C++ compiler was found at install time;
* ``numtrans._cuda`` CUDA kernels, built when nvcc was found, usable when a GPU is present.

>>> import numtrans
>>> "numpy" in numtrans.backends.available()
True
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import warnings
from functools import cache
from importlib import resources

import numpy as np

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
        if name == "cpu" and shadowed_install():
            warn_if_shadowed()
            return None, "not in this (source) tree: " + shadowed_install()
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


@cache
def shadowed_install() -> str:
    """A sentence when this import comes from a source tree without the compiled modules while
    an installed copy that has them exists elsewhere (e.g. Python started in the repository
    root), else "". Like NumPy's "you are importing from the source directory" warning."""
    here = os.path.dirname(os.path.abspath(__file__))
    if any(f.startswith("_cpu.") for f in os.listdir(here)):
        return ""
    try:
        from importlib import metadata

        dist = metadata.distribution("numtrans")
        files = dist.files or []
    except Exception:  # no installed distribution, or unreadable metadata
        return ""
    for f in files:
        if f.name.startswith("_cpu.") and f.suffix in (".so", ".pyd"):
            where = os.path.dirname(os.path.abspath(str(dist.locate_file(f))))
            if where != here and os.path.exists(os.path.join(where, f.name)):
                return (
                    f"numtrans is imported from {here}, which has no compiled modules, while the "
                    f"installed copy in {where} has them: run from another directory (or "
                    "install in editable mode) to use the native kernels"
                )
    return ""


def warn_if_shadowed() -> None:
    """Warn once per process when ``shadowed_install()`` has something to say."""
    message = shadowed_install()
    if message and not _warned:
        _warned.append(True)
        warnings.warn(message, RuntimeWarning, stacklevel=2)


_warned: list[bool] = []


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


_override: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "numtrans_backend", default=None
)
_FLOAT_DTYPES = ("float32", "float64")  # what the native kernels take


def _check_name(name: str, where: str) -> str:
    name = (name or "auto").strip().lower()
    if name != "auto" and name not in _NAMES:
        what = f"{where}={name!r}" if where.isupper() else f"unknown backend {name!r}"
        raise ValueError(f"{what}; expected 'auto' or one of {_NAMES}")
    return name


def _require(name: str) -> None:
    if name != "numpy" and not is_available(name):
        raise RuntimeError(f"backend {name!r} is not available: {reason(name)}")


def resolve(backend: str = "auto", *, dropout_p: float = 0.0, dtype=None) -> str:
    """The one backend decision: the name of what will actually run for ``backend``.

    ``backend`` named explicitly ("numpy", "cpu", "cuda") is used as given, and an unavailable
    one raises, saying why (never a silent switch). ``"auto"`` resolves, in order, to

    1. the backend set by ``with numtrans.backends.use(NAME):`` for the current block;
    2. the environment variable ``NUMTRANS_BACKEND``;
    3. ``"cpu"`` when the compiled module is built, else ``"numpy"``;

    and then to ``"numpy"`` for work the kernels do not do: attention dropout (``dropout_p > 0``)
    or a dtype other than float32/float64 (e.g. a float16 model: the NumPy reference computes it
    in its own dtype). An explicit native backend with dropout raises instead.
    """
    backend = _check_name(backend, "backend")
    dtype_ok = dtype is None or str(np.dtype(dtype)) in _FLOAT_DTYPES
    if backend != "auto":
        if backend != "numpy" and dropout_p > 0:
            raise ValueError(
                f"backend={backend!r} has no attention dropout; use backend='numpy' or "
                f"dropout_p=0 (got dropout_p={dropout_p})"
            )
        if backend != "numpy" and not dtype_ok:
            raise TypeError(
                f"backend={backend!r} takes float32 or float64, got {np.dtype(dtype)}; "
                "use backend='auto' or 'numpy'"
            )
        _require(backend)
        return backend
    chosen = _override.get()
    if chosen is None:
        chosen = _check_name(os.environ.get("NUMTRANS_BACKEND", ""), "NUMTRANS_BACKEND")
    if chosen == "auto":
        chosen = "cpu" if is_available("cpu") else "numpy"
    if chosen == "numpy" or dropout_p > 0 or not dtype_ok:
        return "numpy"
    _require(chosen)
    return chosen


def fused_layers(dtype):
    """``numtrans.native.layers`` (fused GELU, LayerNorm and cross-entropy kernels) when
    ``resolve(dtype=dtype)`` picks the compiled module and it has them, else None: the NumPy
    reference functions call this first and run themselves when it says None."""
    if resolve(dtype=dtype) != "cpu":
        return None
    if not _layers:
        module = _probe("cpu")[0]
        if callable(getattr(module, "gelu_forward", None)):
            _layers.append(importlib.import_module("numtrans.native.layers"))
        else:  # an older build without the layer kernels
            _layers.append(None)
    return _layers[0]


_layers: list = []  # numtrans.native.layers once it is known to be usable (or [None])


def default() -> str:
    """What ``backend="auto"`` stands for right now (``resolve()``, kept under its old name)."""
    return resolve("auto")


@contextlib.contextmanager
def use(name: str):
    """Run a block on one backend: ``with numtrans.backends.use("numpy"): model(x)``.

    Overrides ``NUMTRANS_BACKEND`` for "auto" inside the block (per thread / async task);
    an unavailable backend raises on entry, saying why.
    """
    name = _check_name(name, "backends.use")
    if name not in ("auto", "numpy"):
        _require(name)
    token = _override.set(name)
    try:
        yield name
    finally:
        _override.reset(token)


def describe() -> str:
    """One line saying what runs attention and GELU's erf, printed first by every command.

    e.g. ``attention: native cpu kernel (avx512); NUMTRANS_BACKEND=numpy for the NumPy reference``
    """
    name = resolve("auto")
    if name == "numpy":
        if is_available("cpu"):  # chosen: NUMTRANS_BACKEND=numpy or backends.use("numpy")
            return "attention: NumPy reference (chosen; the native cpu kernel is built)"
        return f"attention: NumPy reference ({reason('cpu')}); build the extension for the native kernel"
    if name == "cpu":
        isas = _build_info().get("cpu_attention_isas", "")
        best = _best_cpu_isa(isas.split(",") if isas else [])
        return (
            f"attention: native cpu kernel ({best}); NUMTRANS_BACKEND=numpy for the NumPy reference"
        )
    return "attention: native cuda kernel; NUMTRANS_BACKEND=numpy for the NumPy reference"


def _best_cpu_isa(compiled: list[str]) -> str:
    """The widest compiled instruction set this CPU runs ("avx512", "avx2" or "baseline")."""
    forced = os.environ.get("NUMTRANS_CPU_ISA", "").strip().lower()
    if forced:
        return forced
    flags = _cpu_flags()
    for isa, flag in (("avx512", "avx512f"), ("avx2", "avx2")):
        if isa in compiled and flag in flags:
            return isa
    return "baseline"


@cache
def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


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
    lines.append(f'backend="auto" resolves to: {resolve("auto")}')
    lines.append(describe())
    shadow = shadowed_install()
    if shadow:
        lines.append(f"note: {shadow}")
    report = "\n".join(lines)
    print(report)
    return report
