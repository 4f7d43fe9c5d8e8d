"""Thread-pool settings that must be in the environment before the libraries that read them load.

numtrans runs two thread pools on the same cores, one after the other: NumPy's OpenBLAS (the
matrix multiplies) and OpenMP (the native kernels in ``numtrans._cpu``). By default both keep
their idle threads spinning for a while after each call, so each pool's spinners steal the cores
the other pool's workers need. Measured on the small GPT step of ``benchmarks/train_step.py``
(AMD EPYC, AVX2, 2 cores, 2 threads): 607 ms with the defaults, 289 ms with OpenMP threads that
sleep, 215 ms when OpenBLAS's sleep too (1-thread runs are unaffected).

* ``OMP_WAIT_POLICY=PASSIVE``: libgomp reads it when ``numtrans._cpu`` first loads;
* ``OPENBLAS_THREAD_TIMEOUT=4``: OpenBLAS threads sleep after 2^4 cycles instead of 2^28;
  OpenBLAS reads it when NumPy is first imported, so it applies only when numtrans is imported
  before NumPy (the ``numtrans`` command always is). Otherwise set it in the shell.

Values already in the environment are kept. Child processes inherit them. Importing this
module applies them (``numtrans/__init__.py`` imports it before anything else).
"""

from __future__ import annotations

import os
import sys


def apply() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


apply()
