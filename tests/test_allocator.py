"""numtrans.allocator.keep_freed_memory and the thread-pool defaults of numtrans/_thread_env.py.

Both change process-wide state, so each check runs in a fresh Python process.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile

import pytest

from numtrans.allocator import keep_freed_memory

GLIBC = platform.libc_ver()[0] == "glibc"

# Allocate, touch and free three 24 MiB arrays per round; count the page faults of rounds 2-6.
# With glibc's defaults the heap top is trimmed (or the blocks mmap'd) after every round, so each
# round faults its pages in again (~18,000); with keep_freed_memory() they stay mapped.
_FAULTS = """
import json, resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from numtrans.allocator import keep_freed_memory
    assert keep_freed_memory()
def round_():
    arrays = [np.ones(6 * 2**20, np.float32) for _ in range(3)]
    return sum(float(a[::4096].sum()) for a in arrays)
round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    round_()
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def _python(code: str, *args: str, env=None) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_keep_freed_memory_stops_refaulting_the_same_pages():
    default = json.loads(_python(_FAULTS, "default"))
    kept = json.loads(_python(_FAULTS, "keep"))
    assert kept * 10 < default, (kept, default)


def test_keep_freed_memory_checks_its_arguments():
    with pytest.raises(ValueError, match="top_pad must be in"):
        keep_freed_memory(top_pad=-1)
    with pytest.raises(ValueError, match="trim_threshold must be in"):
        keep_freed_memory(trim_threshold=2**31)
    assert keep_freed_memory() is GLIBC


_ENV = """
import json, os, sys
if sys.argv[1] == "numpy-first":
    import numpy
import numtrans
print(json.dumps([os.environ.get("OMP_WAIT_POLICY"), os.environ.get("OPENBLAS_THREAD_TIMEOUT")]))
"""


@pytest.mark.parametrize(
    ("order", "preset", "expected"),
    [
        ("numtrans-first", {}, ["PASSIVE", "4"]),
        ("numpy-first", {}, ["PASSIVE", None]),  # too late for OpenBLAS: left alone
        (
            "numtrans-first",
            {"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_THREAD_TIMEOUT": "9"},
            ["ACTIVE", "9"],
        ),
    ],
)
def test_thread_pool_defaults(order, preset, expected):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT")} | preset  # fmt: skip
    assert json.loads(_python(_ENV, order, env=env)) == expected
