"""Keep freed memory for reuse: the C allocator setting that makes a training step cheaper.

A NumPy training step allocates and frees the same large arrays every step (activations,
gradients, temporaries: here ~180 MiB for the small GPT of ``benchmarks/train_step.py``). By
default glibc's ``malloc`` hands big freed blocks back to the operating system (``munmap``, or
trimming the top of the heap), so the next step's arrays land on fresh pages, and the kernel
must zero and map every 4 KiB page again on first touch: a "minor page fault", about a
microsecond each and more on a virtual machine. Measured on that step (AMD EPYC, AVX2,
1 thread): ~30,000 faults per step and ~15-25 % of its time; with the settings below, under 100.

``keep_freed_memory()`` asks glibc (``mallopt``) to keep what it frees:

* ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's ceiling): blocks below it come from the heap, which is
  reused, instead of their own ``mmap`` (returned to the system on every ``free``);
* ``M_TRIM_THRESHOLD`` = 1 GiB and ``M_TOP_PAD`` = 64 MiB: free memory at the top of the heap is
  not handed back (up to 1 GiB), and the heap grows in larger steps.

The cost: the process keeps its peak memory mapped after the peak has passed (its resident size
does not shrink back between steps). That is what a training loop wants and why
``numtrans.training`` calls this once when training starts (``TrainConfig.keep_freed_memory``,
on by default); a long-lived server that trains once and then idles may prefer not to.
PyTorch's CPU allocator has the same problem and the same remedy (its docs suggest jemalloc or
tcmalloc). Only glibc has ``mallopt``: elsewhere (macOS, musl, Windows) this does nothing and
returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's <malloc.h>
_MiB = 2**20


def keep_freed_memory(
    mmap_threshold: int = 32 * _MiB, trim_threshold: int = 1024 * _MiB, top_pad: int = 64 * _MiB
) -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (see the module docstring).

    Returns True when the settings were applied (glibc), False where there is no ``mallopt``.
    Calling it again applies the new values. Process-wide: it affects every library's ``malloc``.
    """
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold),
                        ("top_pad", top_pad)):  # fmt: skip
        if not 0 <= int(value) < 2**31:
            raise ValueError(f"keep_freed_memory: {name} must be in [0, 2**31), got {value}")
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(
        mallopt(option, int(value)) == 1
        for option, value in (
            (_M_MMAP_THRESHOLD, mmap_threshold),
            (_M_TRIM_THRESHOLD, trim_threshold),
            (_M_TOP_PAD, top_pad),
        )
    )
