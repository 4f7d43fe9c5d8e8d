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
# # 03 · Multi-head attention, masks and positions
#
# One attention head computes one weighting of the tokens. **Multi-head attention** runs $h$ heads
# side by side, each in a smaller space of $h_s = C / h$ dimensions, so that different heads can
# look for different things (the previous word, the subject of the verb, ...):
#
# $$ \mathrm{head}_i = \mathrm{Attention}(X W_i^Q, X W_i^K, X W_i^V), \qquad
#    \mathrm{MultiHead}(X) = [\mathrm{head}_1, \dots, \mathrm{head}_h]\, W^O $$
#
# Then: padding and causal masks, and how tokens learn *where* they are. Every weight here is
# random (nothing is trained), so the pictures show shapes and masks, not learned behaviour.
#
# **What it prints** (seeded; the `RESULT` lines are checked by `tests/test_tutorials.py`, and
# there is no fast/full difference): the heads computed by hand differ from the module by
# `RESULT by_hand_max_difference = 0 ± 1e-12`; a rotary query and key two positions apart
# score `RESULT rope_score_distance_2 = 0.5959` wherever they sit.

# %%
import os

import numpy as np

import numtrans as nt
from numtrans import nn
from numtrans.functional.attention import scaled_dot_product_attention

OUT = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")  # one folder for every tutorial
os.makedirs(OUT, exist_ok=True)
try:
    import matplotlib  # noqa: F401

    from numtrans import viz
except ImportError:
    viz = None
np.set_printoptions(precision=3, suppress=True)
nt.manual_seed(0)

tokens = ["the", "cat", "sat", "on", "the", "mat"]
T, C, H = len(tokens), 16, 4
x = nt.randn(1, T, C, dtype=np.float64)  # (B, T, C): a batch of one sentence

try:
    import matplotlib  # noqa: F401  (the figures need it)
except ImportError:
    print('figures are skipped: pip install "numtrans[plot]" to draw them')


from numtrans import backends  # noqa: E402
from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel

# %% [markdown]
# ## 1. `nn.MultiheadAttention`
#
# It mirrors `torch.nn.MultiheadAttention`: the query/key/value projections of all heads are
# stacked in one matrix `in_proj_weight` of shape $(3C, C)$, the output projection is `out_proj`.
# With `batch_first=True` inputs are $(B, T, C)$. `need_weights=True` returns the attention weights;
# `average_attn_weights=False` keeps one map per head: $(B, h, T, T)$.

# %%
mha = nn.MultiheadAttention(C, H, batch_first=True, dtype=np.float64)
print(mha)
y, w = mha(x, x, x, need_weights=True, average_attn_weights=False)
print("output:", y.shape, " per-head weights:", w.shape)
if viz is not None:
    path = os.path.join(OUT, "03_heads.png")
    fig = viz.plot_attention(w.data[0], tokens, title="4 heads, random weights", path=path)
    show(fig)
    print("saved", path)

# %% [markdown]
# ## 2. The heads, by hand
#
# No loop over heads is needed: project once to $C = h \cdot h_s$ features, then *reshape*
# $(B, T, C) \to (B, T, h, h_s)$ and move the head axis forward: $(B, h, T, h_s)$. The attention
# matmuls are then batched over $B$ and $h$ at once.

# %%
W = mha.in_proj_weight.data  # (3C, C): rows [0, C) are W^Q, [C, 2C) W^K, [2C, 3C) W^V
b = mha.in_proj_bias.data
hs = C // H


def split_heads(a):  # (B, T, C) -> (B, h, T, hs)
    return a.reshape(1, T, H, hs).transpose(0, 2, 1, 3)


q, k, v = (
    split_heads(x.data @ W[i * C : (i + 1) * C].T + b[i * C : (i + 1) * C]) for i in range(3)
)
print("q per head:", q.shape)
heads = scaled_dot_product_attention(nt.Tensor(q), nt.Tensor(k), nt.Tensor(v)).data  # (B, h, T, hs)
merged = heads.transpose(0, 2, 1, 3).reshape(1, T, C)  # heads side by side again: (B, T, C)
by_hand = merged @ mha.out_proj.weight.data.T + mha.out_proj.bias.data
print("max |by hand - module|:", np.abs(by_hand - y.data).max())
print(f"RESULT by_hand_max_difference = {np.abs(by_hand - y.data).max():.1e}")
assert np.allclose(by_hand, y.data)

# %% [markdown]
# ## 3. Masks, and a warning about conventions
#
# Two masks appear in practice:
#
# * **padding**: sentences in a batch have different lengths and are padded to one length; no
#   query should attend to a padding token;
# * **causal**: in a decoder, token $t$ must not see tokens after $t$.
#
# Conventions differ, and this is a classic bug: PyTorch's (and numtrans')
# `scaled_dot_product_attention` takes a boolean mask where **True = may attend**, while
# `nn.MultiheadAttention` takes `key_padding_mask` and boolean `attn_mask` where
# **True = blocked**. numtrans follows PyTorch in both places, so PyTorch code ports unchanged.

# %%
lengths = [6, 4]
batch = nt.randn(2, T, C, dtype=np.float64)
key_padding_mask = np.arange(T)[None, :] >= np.array(lengths)[:, None]  # (B, T), True = pad
causal_blocked = np.triu(np.ones((T, T), dtype=bool), k=1)  # MHA convention: True = blocked
y, w = mha(batch, batch, batch, key_padding_mask=key_padding_mask, attn_mask=causal_blocked)
print("weights of sentence 2 (length 4), averaged over heads:\n", w.data[1])
sdpa_allowed = ~causal_blocked  # the same mask in SDPA's convention
if viz is not None:
    masks = {
        "padding (MHA: True=pad)": key_padding_mask[1],
        "causal (MHA: True=blocked)": causal_blocked,
        "causal (SDPA: True=attend)": sdpa_allowed,
    }
    fig = viz.plot_masks(masks, path=os.path.join(OUT, "03_masks.png"), tokens=tokens)
    show(fig)

# %% [markdown]
# ## 4. Attention does not know the order of the tokens
#
# Permute the tokens and the output rows are permuted the same way, nothing else changes: to
# attention, "the cat sat on the mat" is a *set* of words. Word order has to be put in.

# %%
perm = np.array([5, 2, 0, 1, 4, 3])
y1, _ = mha(x, x, x)
xp = nt.Tensor(x.data[:, perm])
y2, _ = mha(xp, xp, xp)
print("permuting the input permutes the output:", np.allclose(y1.data[:, perm], y2.data))

# %% [markdown]
# ## 5. Sinusoidal positions ("Attention Is All You Need", section 3.5)
#
# $$ PE_{(pos, 2i)} = \sin\!\left(pos / 10000^{2i/d}\right), \qquad
#    PE_{(pos, 2i+1)} = \cos\!\left(pos / 10000^{2i/d}\right) $$
#
# Each pair of channels is a clock turning at its own speed: the first pairs tick once every few
# positions, the last once every thousands. The vector of all clocks is different for every
# position, and is simply **added** to the token embedding.

# %%
pe = nn.sinusoidal_encoding(100, 64)
print("PE:", pe.shape, "  PE[1, :4] =", pe[1, :4])
if viz is not None:
    fig = viz.plot_positional_encoding(pe, path=os.path.join(OUT, "03_sinusoidal.png"))
    show(fig)

# %% [markdown]
# Nearby positions have similar encodings, and the similarity depends only on the distance:
# $PE_{pos+k}$ is a rotation of $PE_{pos}$, the same rotation for every $pos$.

# %%
sim = pe @ pe.T  # (100, 100) dot products between positions
print("PE[10].PE[10+k] for k = 0..4:", sim[10, 10:15])
print("PE[50].PE[50+k] for k = 0..4:", sim[50, 50:55], "(the same)")
posenc = nn.SinusoidalPositionalEncoding(C, max_len=64, dtype=np.float64)
x_with_positions = posenc(x)  # x + PE[:T]; nothing to learn, nothing saved in state_dict
y3, _ = mha(x_with_positions, x_with_positions, x_with_positions)
xp_with_positions = posenc(xp)
y4, _ = mha(xp_with_positions, xp_with_positions, xp_with_positions)
print("with positions, permuting changes the result:", not np.allclose(y3.data[:, perm], y4.data))

# %% [markdown]
# ## 6. Learned positions and rotary embeddings
#
# **Learned** absolute positions (BERT, GPT-2) are simply a trained table of shape
# $(T_{max}, C)$, one row added per position.
#
# **Rotary embeddings** (RoPE, used by LLaMA and most recent LLMs) add nothing to $x$. They rotate
# each query and key, channel pair by channel pair, by an angle proportional to its position.
# Rotations keep lengths, and the dot product of a query rotated to position $m$ with a key rotated
# to position $n$ depends only on $m - n$: attention scores see **relative** positions.

# %%
learned = nn.LearnedPositionalEmbedding(64, C)
print("learned table:", learned.weight.shape, " trainable:", learned.weight.requires_grad)

rope = nn.RotaryEmbedding(head_dim=8, max_len=64)
qv, kv = nt.randn(1, 1, 1, 8, dtype=np.float64), nt.randn(1, 1, 1, 8, dtype=np.float64)


def rope_score(m, n):
    qm, _ = rope(qv, qv, offset=m)
    kn, _ = rope(kv, kv, offset=n)
    return (qm.data * kn.data).sum()


for m, n in [(3, 1), (10, 8), (40, 38), (5, 5)]:
    print(f"query at {m:2d}, key at {n:2d} (distance {m - n}): score {rope_score(m, n):+.4f}")
print(f"RESULT rope_score_distance_2 = {rope_score(40, 38):.4f}")

# %% [markdown]
# **Next:** `04_transformer_block` wraps attention with residual connections, layer norms and a
# feed-forward network into the Transformer's building block.
