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
# # 02 · Self-attention
#
# Self-attention lets every token of a sentence look at every other token and take what it needs.
# For a sentence of $T$ tokens, each a vector of size $C$ (the rows of $X$, shape $(T, C)$):
#
# $$ Q = X W^Q,\quad K = X W^K,\quad V = X W^V, \qquad
#    \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V $$
#
# * a **query** $q_t$ says what token $t$ is looking for, a **key** $k_s$ what token $s$ offers;
# * the score $q_t \cdot k_s / \sqrt{d_k}$ measures the match, the softmax over $s$ turns the
#   scores of row $t$ into weights that sum to 1;
# * the output for token $t$ is the weighted average of the **values** $v_s$.
#
# We compute this by hand in NumPy on a small sentence, then with numtrans, and draw the weights.
# The embeddings and projections are random (nothing is trained here), so the weights show the
# mechanics, not what a trained model attends to.
#
# **What it prints** (seeded; the `RESULT` lines are checked by `tests/test_tutorials.py`, and
# there is no fast/full difference): the weight of "the" (query 0) on "sat" (key 2)
# `RESULT weight_the_sat = 0.298`, the library's difference from the hand computation
# `RESULT library_max_difference = 0 ± 1e-12`, and with $d_k = 1024$ the largest softmax weight
# of one query over 10 keys, unscaled `RESULT largest_weight_unscaled_1024 = 1.000` against
# scaled `RESULT largest_weight_scaled_1024 = 0.260`.

# %%
import io
import os

import numpy as np

import numtrans as nt
from numtrans.functional.attention import attention_weights, scaled_dot_product_attention

OUT = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")  # one folder for every tutorial
os.makedirs(OUT, exist_ok=True)
try:
    import matplotlib  # noqa: F401  (numtrans.viz draws with it)

    from numtrans import viz
except ImportError:
    viz = None
np.set_printoptions(precision=3, suppress=True)


def show(fig):
    """Display a figure inline when run as a notebook; as a script it is only saved as PNG."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        display(Image(buf.getvalue()))


from numtrans import backends  # noqa: E402

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel


# %% [markdown]
# ## 1. A sentence as vectors
#
# Real models learn an embedding per token. Here we draw random ones, with one twist: the two
# occurrences of "the" are the same token, so they get the **same** vector.

# %%
tokens = ["the", "cat", "sat", "on", "the", "mat"]
vocab = sorted(set(tokens))
rng = np.random.default_rng(0)
C = 8  # embedding size
table = rng.standard_normal((len(vocab), C))
X = table[[vocab.index(t) for t in tokens]]  # (T, C)
print("X:", X.shape, "  rows 0 and 4 are both 'the':", np.allclose(X[0], X[4]))

# %% [markdown]
# ## 2. Attention by hand
#
# Three projection matrices (learned in a real model, random here) map each token to a query,
# a key and a value of size $d_k = 4$. Follow the shapes.

# %%
d_k = 4
W_q, W_k, W_v = (rng.standard_normal((C, d_k)) / np.sqrt(C) for _ in range(3))
Q, K, V = X @ W_q, X @ W_k, X @ W_v  # (T, d_k) each
scores = Q @ K.T / np.sqrt(d_k)  # (T, T): row t = how well query t matches every key
scores_shifted = scores - scores.max(axis=1, keepdims=True)  # same softmax, no overflow
weights = np.exp(scores_shifted) / np.exp(scores_shifted).sum(axis=1, keepdims=True)
out = weights @ V  # (T, d_k): each row a weighted average of the value rows
print("Q, K, V:", Q.shape, " scores:", scores.shape, " out:", out.shape)
print("each row of weights sums to 1:", weights.sum(axis=1))
print("weights (rows = queries, columns = keys):\n", weights)
print(f"RESULT weight_the_sat = {weights[0, 2]:.3f}")

# %% [markdown]
# Rows 0 and 4 ("the" and "the") are identical: the same token asks the same question of the
# same keys. Attention by itself does not know *where* a token is; the next tutorial adds
# positions.
#
# ## 3. The same with numtrans
#
# `scaled_dot_product_attention` computes the same thing on tensors of shape $(\dots, T, d_k)$,
# batched over any leading axes (batch, heads), and records the graph for backward.
# `attention_weights` returns the softmax matrix itself.

# %%
q, k, v = (
    nt.Tensor(a[None], requires_grad=True) for a in (Q, K, V)
)  # add a batch axis: (1, T, d_k)
y = scaled_dot_product_attention(q, k, v)
w = attention_weights(q, k)
print("library output:", y.shape, " max |difference|:", np.abs(y.data[0] - out).max())
assert np.allclose(y.data[0], out) and np.allclose(w.data[0], weights)
print(f"RESULT library_max_difference = {np.abs(y.data[0] - out).max():.1e}")

# %% [markdown]
# ## 4. The weights as a heatmap
#
# Row $t$ shows where token $t$ looks. (Saved to `$NUMTRANS_TUTORIAL_OUT`, default `./out`.)

# %%
if viz is not None:
    path = os.path.join(OUT, "02_self_attention_weights.png")
    title = "softmax(QK^T / sqrt(d_k))\nrandom weights, untrained"
    show(viz.plot_attention(weights, tokens, title=title, path=path))
    print("saved", path)

# %% [markdown]
# ## 5. Why divide by $\sqrt{d_k}$?
#
# If the entries of $q$ and $k$ have unit variance, $q \cdot k$ is a sum of $d_k$ products and has
# variance $d_k$. Large scores push the softmax into saturation: one weight near 1, the rest near 0,
# and gradients near zero. Dividing by $\sqrt{d_k}$ brings the variance back to 1.

# %%
for d in (4, 64, 1024):
    qs, ks = rng.standard_normal((2000, d)), rng.standard_normal((2000, d))
    dots = (qs * ks).sum(axis=1)
    row = rng.standard_normal((1, d)) @ rng.standard_normal((d, 10))  # one query, 10 keys
    p_raw = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
    scaled = row / np.sqrt(d)
    p_scaled = np.exp(scaled - scaled.max()) / np.exp(scaled - scaled.max()).sum()
    print(
        f"d_k={d:5d}: var(q.k)={dots.var():8.1f}   largest weight unscaled {p_raw.max():.3f}, "
        f"scaled {p_scaled.max():.3f}"
    )
print(f"RESULT largest_weight_unscaled_1024 = {p_raw.max():.3f}")
print(f"RESULT largest_weight_scaled_1024 = {p_scaled.max():.3f}")

# %% [markdown]
# ## 6. Masks
#
# A mask removes some (query, key) pairs before the softmax by setting their scores to $-\infty$
# (weight 0). numtrans follows PyTorch's `scaled_dot_product_attention`:
#
# * a boolean mask where **True means "may attend"**;
# * a float mask that is **added** to the scores (0 keeps, $-\infty$ removes);
# * `is_causal=True`: token $t$ sees only tokens $\le t$ (what a language model needs: it must not
#   read the word it is trying to predict).

# %%
y_causal = scaled_dot_product_attention(q, k, v, is_causal=True)
w_causal = attention_weights(q, k, is_causal=True).data[0]
print("causal weights (upper triangle is zero):\n", w_causal)
allowed = np.tril(np.ones((6, 6), dtype=bool))
assert np.allclose(scaled_dot_product_attention(q, k, v, attn_mask=allowed).data, y_causal.data)
additive = np.where(allowed, 0.0, -np.inf)
assert np.allclose(scaled_dot_product_attention(q, k, v, attn_mask=additive).data, y_causal.data)
if viz is not None:
    show(
        viz.plot_attention(
            w_causal,
            tokens,
            title="causal\nrandom weights",
            path=os.path.join(OUT, "02_causal.png"),
        )
    )

# %% [markdown]
# What if a query may attend to **nothing** (every key masked, e.g. a padding query)? The softmax of
# a row of $-\infty$ is $0/0$. numtrans returns a zero row and zero gradients instead of NaN, so one
# empty row cannot poison a whole batch.

# %%
nothing = allowed.copy()
nothing[2] = False  # query 2 may attend to no key
y_empty = scaled_dot_product_attention(q, k, v, attn_mask=nothing)
print("row 2 of the output:", y_empty.data[0, 2], " any NaN:", np.isnan(y_empty.data).any())

# %% [markdown]
# ## 7. Gradients flow through attention
#
# Backward goes through the matmuls, the scaling and the softmax. A finite-difference check
# confirms the gradients (in float64, on the whole function).

# %%
loss = (y * y).sum()
loss.backward()
print("dL/dq:", q.grad.shape, " dL/dk:", k.grad.shape, " dL/dv:", v.grad.shape)
small = [nt.Tensor(a[None, :3], requires_grad=True) for a in (Q, K, V)]
print("gradcheck:", nt.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v), small))

# %% [markdown]
# **Next:** `03_multihead_and_positions` runs several attention heads side by side and gives the
# tokens their positions.
