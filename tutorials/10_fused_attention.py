# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · Fused attention
#
# Attention as written in tutorial 02 builds the score matrix $S = QK^\top/\sqrt{d}$, turns it
# into probabilities $P = \mathrm{softmax}(S)$ and multiplies $O = PV$. For $N$ queries and $M$
# keys, $S$ and $P$ hold $N \times M$ numbers **per head**. That is fine at $N = 256$; at
# $N = 16384$ one float32 score matrix is 1 GiB, per head.
#
# Memory size is half the problem; memory *traffic* is the other half. The products $QK^\top$ and
# $PV$ do $2d$ multiply-adds per score, but the softmax in between reads and writes every score
# several times (max, subtract, exp, sum, divide), and on a large matrix each pass goes all the
# way to DRAM. A **fused** kernel never stores $S$: it computes a tile of scores, uses it while it
# is in cache, and throws it away.
#
# This tutorial derives the trick that makes that possible, the *online softmax*, first in
# NumPy, then times numtrans' C++ kernel (`numtrans.native`, source in
# `csrc/cpu/attention_*.cpp`) against the NumPy path.
#
# **What it prints** (seeded; the `RESULT` lines are checked by `tests/test_tutorials.py` in fast
# mode, and need no compiled kernel): the online softmax of one query matches the textbook one
# to `RESULT online_max_difference = 0 ± 1e-12` with log-sum-exp `RESULT online_lse = 3.9971`,
# and the tiled version to `RESULT tiled_max_difference = 0 ± 1e-12`. The timings depend on the
# machine and are not checked: on the 2-core Xeon (AVX-512) this was written on, with one
# thread, the native kernel was 3-6x faster than the NumPy path at N = 128-256 (fast mode) and
# 5-8x at N = 256-2048 (full mode).

# %%
import os
import time
from pathlib import Path

import numpy as np

import numtrans as nt
from numtrans import backends

FAST = os.environ.get("NUMTRANS_TUTORIAL_FAST") == "1"  # set by the test-suite: less work
OUT = Path(os.environ.get("NUMTRANS_TUTORIAL_OUT", "out"))  # one folder for every tutorial
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)


def attention_textbook(q, k, v):
    """softmax(q k^T / sqrt(d)) v for one head, materialising the (N, M) matrices."""
    s = q @ k.T / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)) @ v


try:
    import matplotlib  # noqa: F401  (the figures need it)
except ImportError:
    print('figures are skipped: pip install "numtrans[plot]" to draw them')


from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel

# %% [markdown]
# ## 1. The online softmax, derived step by step
#
# Take one query and its scores $s_1, \dots, s_M$. The stable softmax subtracts the maximum
# $m = \max_j s_j$ so that no exponent is positive:
#
# $$ o = \frac{\sum_j e^{s_j - m} v_j}{\sum_j e^{s_j - m}} . $$
#
# Suppose we have only seen the first keys and kept three things about them:
# the running maximum $m$, the running sum $\ell = \sum e^{s_j - m}$ and the *un-normalised*
# output $a = \sum e^{s_j - m} v_j$. A new block of keys arrives with maximum $\tilde m$.
# The new maximum is $m' = \max(m, \tilde m)$, and every old term must now be measured against
# $m'$ instead of $m$: $e^{s_j - m'} = e^{s_j - m} \cdot e^{m - m'}$. So the old state is
# **rescaled** by $\alpha = e^{m - m'} \le 1$ and the new terms are added:
#
# $$ \ell' = \alpha \ell + \sum_{\text{new}} e^{s_j - m'}, \qquad
#    a' = \alpha a + \sum_{\text{new}} e^{s_j - m'} v_j . $$
#
# After the last block, $o = a / \ell$ and the log-sum-exp is $m + \log \ell$. Nothing of size
# $M$ was kept: three numbers' worth of state per query. Let us check it on one query, one key at
# a time.


# %%
def online_softmax_row(s, v):
    """Stream the keys one by one; state = (m, l, a). Returns (output row, log-sum-exp)."""
    m, l, a = -np.inf, 0.0, np.zeros(v.shape[1])
    for s_j, v_j in zip(s, v):
        m_new = max(m, s_j)
        alpha = np.exp(m - m_new)  # exp(-inf) = 0 on the first key
        w = np.exp(s_j - m_new)
        l = alpha * l + w
        a = alpha * a + w * v_j
        m = m_new
    return a / l, m + np.log(l)


q, k, v = rng.standard_normal((1, 16)), rng.standard_normal((40, 16)), rng.standard_normal((40, 8))
s = (q @ k.T / 4.0)[0]
row, lse = online_softmax_row(s, v)
print("max |online - textbook| =", np.abs(row - attention_textbook(q, k, v)[0]).max())
print("log-sum-exp:", lse, "=", np.log(np.exp(s).sum()))
print(f"RESULT online_max_difference = {np.abs(row - attention_textbook(q, k, v)[0]).max():.1e}")
print(f"RESULT online_lse = {lse:.4f}")

# %% [markdown]
# ## 2. Tiles: FlashAttention in NumPy
#
# One key at a time is correct but slow. FlashAttention applies the same recurrence to **tiles**:
# a block of queries against a block of keys, so that each step is a small matrix product
# ($Q_i K_j^\top$ and $P_{ij} V_j$) and the state $(m, \ell, a)$ is a vector per query block.
# FlashAttention-2's order: loop over query blocks (independent: this is the parallel loop),
# stream key blocks, and divide by $\ell$ **once at the end**.


# %%
def flash_attention_numpy(q, k, v, block_q=32, block_k=32, causal=False):
    """Tiled online-softmax attention for one head; only (block_q, block_k) scores at a time."""
    N, d = q.shape
    out, lse = np.zeros((N, v.shape[1])), np.zeros(N)
    for i0 in range(0, N, block_q):
        qi = q[i0 : i0 + block_q] / np.sqrt(d)
        m = np.full(len(qi), -np.inf)
        l = np.zeros(len(qi))
        a = np.zeros((len(qi), v.shape[1]))
        end = min(len(k), i0 + len(qi)) if causal else len(k)  # skip blocks above the diagonal
        for j0 in range(0, end, block_k):
            s = qi @ k[j0 : j0 + block_k].T  # (block_q, block_k): the only scores in memory
            if causal:
                rows, cols = np.arange(i0, i0 + len(qi))[:, None], np.arange(j0, j0 + s.shape[1])
                s = np.where(cols <= rows, s, -np.inf)
            m_new = np.maximum(m, s.max(axis=1))
            alpha = np.exp(m - m_new)
            p = np.exp(s - m_new[:, None])
            l = alpha * l + p.sum(axis=1)
            a = alpha[:, None] * a + p @ v[j0 : j0 + block_k]
            m = m_new
        out[i0 : i0 + len(qi)] = a / l[:, None]
        lse[i0 : i0 + len(qi)] = m + np.log(l)
    return out, lse


q, k, v = (rng.standard_normal((200, 16)) for _ in range(3))
tiled, _ = flash_attention_numpy(q, k, v)
print("tiled vs textbook:", np.abs(tiled - attention_textbook(q, k, v)).max())
print(f"RESULT tiled_max_difference = {np.abs(tiled - attention_textbook(q, k, v)).max():.1e}")

# %% [markdown]
# (A query whose keys are *all* masked would give $m' = -\infty$ and $e^{-\infty - (-\infty)}$ =
# NaN. The C++ kernel uses 0 instead of such a maximum, so those rows end with $\ell = 0$ and an
# output of zeros, which is also what `F.scaled_dot_product_attention` returns.)
#
# ## 3. The backward pass without $P$
#
# Training needs gradients, and the textbook backward reuses the stored $P$. The fused kernel
# saves only the output $O$ and the log-sum-exp $L_i = m_i + \log \ell_i$ (one number per query),
# and **recomputes** $P_{ij} = e^{s_{ij} - L_i}$ tile by tile. With $D_i = \sum_d dO_{id} O_{id}$:
#
# $$ dV = P^\top dO,\quad dP = dO\, V^\top,\quad dS = P \circ (dP - D),\quad
#    dQ = \tfrac{1}{\sqrt d}\, dS\, K,\quad dK = \tfrac{1}{\sqrt d}\, dS^\top Q . $$
#
# Recomputing costs one more matrix product, but reading an $N \times M$ matrix back from DRAM
# would cost more. `numtrans.native.attention_backward` does exactly this; the tests compare it
# with finite differences and with PyTorch.
#
# ## 4. The smallest native kernel first: a row softmax
#
# Before the fused kernel, the simplest thing the C++ module does: the stable softmax of every row,
# $y_j = e^{x_j - \max x} / \sum_k e^{x_k - \max x}$, in `csrc/cpu/softmax.cpp` (one loop for the
# maximum, one for the exponentials and their sum, one to divide), bound to Python in
# `csrc/cpu/module.cpp`. The same three steps, as NumPy writes them, are
# `numtrans.functional.activations.softmax_array`; a row that is all $-\infty$ (a query with every
# key masked) gives zeros, not NaN, in both.

# %%
if backends.is_available("cpu"):
    from numtrans.functional.activations import softmax_array

    logits = rng.standard_normal((4, 1000)).astype(np.float32) * 10
    logits[0] = -np.inf  # a fully masked row
    native_softmax = backends.get("cpu").softmax(logits)
    print(
        "max |native softmax - NumPy softmax| =",
        np.abs(native_softmax - softmax_array(logits)).max(),
    )
    print("the masked row:", native_softmax[0, :4], "...")

# %% [markdown]
# ## 5. The native kernel against the NumPy path
#
# The C++ version (`csrc/cpu/attention_forward.cpp`) is the tiled loop above with three
# additions: the tile products are register-blocked small matrix multiplies, the exponential is a
# vectorised polynomial, and OpenMP runs query blocks on all cores. The plain scalar version in
# `attention_reference.cpp` is kept beside it for comparison.

# %%
have_native = backends.is_available("cpu")
print("native CPU kernel:", backends.reason("cpu"))
if have_native:
    from numtrans.functional.attention import scaled_dot_product_attention as sdpa
    from numtrans.native import attention_forward, last_isa

    def best_of(f, *args, reps=3):
        f(*args)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            f(*args)
            times.append(time.perf_counter() - t)
        return min(times) * 1e3

    # One thread each (NumPy's BLAS too, when threadpoolctl is installed): the comparison is
    # about the algorithm, not the core count.
    nt.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except ImportError:
        pass
    sizes = [128, 256] if FAST else [256, 512, 1024, 2048]
    results = []
    for N in sizes:
        x = rng.standard_normal((3, 1, 4, N, 64)).astype(np.float32)
        tq, tk, tv = (nt.Tensor(a) for a in x)
        t_np = best_of(sdpa, tq, tk, tv, None, 0.0, True, None, "numpy")
        t_nat = best_of(attention_forward, x[0], x[1], x[2], None, True)
        mb = 4 * N * N * 4 / 2**20  # the float32 score matrices of 4 heads
        results.append((N, t_np, t_nat))
        print(
            f"N={N:5d}: numpy {t_np:8.2f} ms   native {t_nat:7.2f} ms ({last_isa()})"
            f"   speed-up {t_np / t_nat:5.1f}x   scores the NumPy path stores: {mb:6.1f} MB"
        )
    out_np = sdpa(tq, tk, tv, is_causal=True, backend="numpy").data
    out_nat = attention_forward(x[0], x[1], x[2], is_causal=True)[0]
    print("max |native - numpy| =", np.abs(out_np - out_nat).max())

# %% [markdown]
# The full benchmark, `python benchmarks/attention.py`, adds PyTorch's CPU kernel, the backward
# pass, two threads and peak memory; it saves its plot to `benchmarks/results/attention.png`.
# We show that plot if it has been made, otherwise the timings above.

# %%
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
saved = Path("benchmarks") / "results" / "attention.png"  # run from the repository root
if plt is not None and saved.exists() and not FAST:
    img = plt.imread(saved)
    fig = plt.figure(figsize=(12, 4.5))
    plt.imshow(img)
    plt.axis("off")
    show(fig)
    plt.close(fig)
elif plt is not None and have_native:
    Ns, t_np, t_nat = zip(*results)
    fig = plt.figure(figsize=(5, 3.5))
    plt.loglog(Ns, t_np, "o-", label="NumPy path")
    plt.loglog(Ns, t_nat, "o-", label="native fused kernel")
    plt.xlabel("sequence length N (4 heads, d = 64, causal)")
    plt.ylabel("ms (best of 3)")
    plt.legend()
    plt.tight_layout()
    plt.savefig(OUT / "fused_attention_timing.png")
    print("saved", OUT / "fused_attention_timing.png")
    show(fig)
    plt.close(fig)

# %% [markdown]
# ## Takeaways
#
# * The online softmax needs a running max, a running sum and an un-normalised output; merging a
#   new block rescales the old state by $e^{m - m'}$.
# * Tiling turns attention into small matrix products whose scores never leave the cache:
#   memory is $O(\text{tile})$ instead of $O(NM)$, and causal attention skips the tiles above the
#   diagonal (about half the work).
# * The backward recomputes $P$ from the saved log-sum-exp instead of storing it.
# * In numtrans, `F.scaled_dot_product_attention(..., backend="cpu")` uses the fused kernel
#   (`"auto"` picks it when it is built); `backend="numpy"` is the readable reference.
