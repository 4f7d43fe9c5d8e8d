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
# # 04 · The Transformer block
#
# A Transformer is a stack of identical blocks. Each block has two sub-layers:
#
# 1. **self-attention**: tokens exchange information;
# 2. a **position-wise feed-forward network**: each token's vector is transformed on its own,
#    $\mathrm{FFN}(x) = W_2\,\mathrm{act}(W_1 x + b_1) + b_2$, usually $C \to 4C \to C$.
#
# Each sub-layer is wrapped in a **residual connection** ($x + f(x)$) and a **LayerNorm**.
# The encoder block of the original paper (*post-norm*) and of GPT-2 and later (*pre-norm*):
#
# | post-norm (2017, BERT)             | pre-norm (GPT-2, LLaMA)            |
# |------------------------------------|------------------------------------|
# | $x = \mathrm{LN}(x + \mathrm{Attn}(x))$ | $x = x + \mathrm{Attn}(\mathrm{LN}(x))$ |
# | $x = \mathrm{LN}(x + \mathrm{FFN}(x))$  | $x = x + \mathrm{FFN}(\mathrm{LN}(x))$  |
#
# We follow one batch through an encoder layer printing the shape at every step, rebuild the
# layer by hand, compare the two norm orders, and then look at the decoder layer. The layers are
# freshly initialised (random weights, nothing trained): the point is the data flow.
#
# **What it prints** (seeded; the `RESULT` lines are checked by `tests/test_tutorials.py`, and
# there is no fast/full difference): through 12 feed-forward networks the gradient reaching the
# input has norm `RESULT grad_norm_residual = 10.69` with residual connections and
# `RESULT grad_norm_plain = 3.5e-07` without; after 8 pre-norm layers the residual stream's
# standard deviation has grown to `RESULT prenorm_std_layer_8 = 2.415` (post-norm keeps it at 1).

# %%
import os

import numpy as np

import numtrans as nt
import numtrans.functional as F
from numtrans import nn

OUT = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")  # one folder for every tutorial
os.makedirs(OUT, exist_ok=True)
try:
    import matplotlib  # noqa: F401

    from numtrans import viz
except ImportError:
    viz = None
np.set_printoptions(precision=3, suppress=True)
nt.manual_seed(0)

B, T, C, H, FF = 2, 5, 16, 4, 64
x = nt.randn(B, T, C, dtype=np.float64)
pad = np.array([[False] * 5, [False, False, False, True, True]])  # sentence 2 has 3 tokens

try:
    import matplotlib  # noqa: F401  (the figures need it)
except ImportError:
    print('figures are skipped: pip install "numtrans[plot]" to draw them')


from numtrans import backends  # noqa: E402
from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel

# %% [markdown]
# ## 1. The encoder layer, step by step
#
# `nn.TransformerEncoderLayer` mirrors PyTorch's (same parameter names, so PyTorch weights load
# directly). We switch dropout off (`eval()`) to compare exactly.

# %%
layer = nn.TransformerEncoderLayer(C, H, FF, dropout=0.1, batch_first=True, dtype=np.float64)
layer.eval()
print(layer)

print("x                       ", x.shape)
a, _ = layer.self_attn(x, x, x, key_padding_mask=pad, need_weights=False)
print("self-attention(x)       ", a.shape, "  tokens mixed across positions")
h = layer.norm1(x + a)
print("norm1(x + attn)         ", h.shape, "  residual, then LayerNorm")
f = layer.linear1(h)
print("linear1                 ", f.shape, "  widen to dim_feedforward")
f = layer.linear2(F.relu(f))
print("linear2(relu(.))        ", f.shape, "  back to d_model, position by position")
by_hand = layer.norm2(h + f)
print("norm2(h + ffn)          ", by_hand.shape)

out = layer(x, src_key_padding_mask=pad)
print("max |by hand - layer| =", np.abs(out.data - by_hand.data).max())
assert np.allclose(out.data, by_hand.data)

# %% [markdown]
# The shape never changes: $(B, T, C)$ in, $(B, T, C)$ out. That is what lets us stack blocks.
# After a post-norm layer every position has mean 0 and variance 1 over its features
# (LayerNorm's weight starts at 1 and its bias at 0):

# %%
print("per-position mean:", out.data[0].mean(-1), "\nper-position var: ", out.data[0].var(-1))

# %% [markdown]
# ## 2. Why residual connections?
#
# With $x_{l+1} = x_l + f(x_l)$ the gradient has a direct path: $\partial x_{l+1}/\partial x_l =
# I + \partial f/\partial x_l$. Without it, the gradient is a product of $L$ Jacobians, which
# shrinks (or grows) exponentially with depth. Compare the gradient that reaches the input of a
# stack of 12 feed-forward networks, with and without the identity path.

# %%
ffns = [nn.FeedForward(C, FF, dtype=np.float64) for _ in range(12)]
norms = {}
for residual in (True, False):
    inp = nt.randn(1, T, C, dtype=np.float64, requires_grad=True)
    z = inp
    for ffn in ffns:
        z = z + ffn(z) if residual else ffn(z)
    z.sum().backward()
    print(f"residual={residual!s:5}: |d sum(out) / d input| = {np.linalg.norm(inp.grad):.3e}")
    norms[residual] = np.linalg.norm(inp.grad)
print(f"RESULT grad_norm_residual = {norms[True]:.2f}")
print(f"RESULT grad_norm_plain = {norms[False]:.1e}")

# %% [markdown]
# ## 3. Post-norm versus pre-norm
#
# Post-norm normalises the sum, so the residual stream is re-normalised after every block.
# Pre-norm normalises only the input of each sub-layer: the residual stream is a plain sum of
# all block outputs, the gradient path from the loss to every block is the identity, and deep
# stacks train stably without a learning-rate warm-up (Xiong et al., 2020). A pre-norm stack
# needs a final LayerNorm (GPT-2's `ln_f`; the `norm=` argument of `nn.TransformerEncoder`).
#
# Watch the scale of the residual stream through 8 layers of each kind:

# %%
for norm_first in (False, True):
    proto = nn.TransformerEncoderLayer(C, H, FF, dropout=0.0, batch_first=True,
                                       norm_first=norm_first, dtype=np.float64)  # fmt: skip
    stack = nn.TransformerEncoder(proto, num_layers=8)
    z, stds = x, []
    for lyr in stack.layers:
        z = lyr(z)
        stds.append(z.data.std())
    print(f"norm_first={norm_first!s:5}: std of the stream after each layer", np.array(stds))
print(f"RESULT prenorm_std_layer_8 = {stds[-1]:.3f}")

# %% [markdown]
# ## 4. The decoder layer
#
# A decoder layer has **three** sub-layers: causal self-attention over the target tokens,
# **cross-attention** whose queries come from the target and whose keys and values come from
# the encoder output (the *memory*), and the feed-forward network.

# %%
dec = nn.TransformerDecoderLayer(C, H, FF, dropout=0.0, batch_first=True, dtype=np.float64)
src_tokens = ["le", "chat", "est", "assis", "."]
tgt_tokens = ["<s>", "the", "cat", "sat"]
memory = nt.randn(1, len(src_tokens), C, dtype=np.float64)  # the encoder's output
tgt = nt.randn(1, len(tgt_tokens), C, dtype=np.float64)
y = dec(tgt, memory, tgt_is_causal=True)
print("tgt", tgt.shape, "+ memory", memory.shape, "->", y.shape)

sa, sa_w = dec.self_attn(tgt, tgt, tgt, is_causal=True)
ca, ca_w = dec.multihead_attn(tgt, memory, memory)
print("self-attention weights ", sa_w.shape, "(target x target, causal)")
print("cross-attention weights", ca_w.shape, "(target x source)")
if viz is not None:
    # Short lines: the figure is only as wide as its four tokens.
    fig = viz.plot_attention(sa_w.data[0], tgt_tokens, title="decoder self-attn\n(causal, random)",
                             path=os.path.join(OUT, "04_decoder_self.png"))  # fmt: skip
    show(fig)
    path = os.path.join(OUT, "04_cross_attention.png")
    fig = viz.plot_attention(
        ca_w.data[0], src_tokens, tgt_tokens, title="cross-attention\n(random weights)", path=path
    )
    show(fig)
    print("saved", path)

# %% [markdown]
# ## 5. The whole model and where the parameters are
#
# `nn.Transformer` stacks $N$ encoder and $N$ decoder layers (with final LayerNorms). Per layer,
# attention holds $4C^2$ weights ($W^Q, W^K, W^V, W^O$), the feed-forward network $2 \cdot C \cdot 4C
# = 8C^2$: two thirds of a block is the feed-forward network.

# %%
model = nn.Transformer(C, H, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=4 * C,
                       dropout=0.0, batch_first=True, dtype=np.float64)  # fmt: skip
src = nt.randn(B, 7, C, dtype=np.float64)
tgt = nt.randn(B, 4, C, dtype=np.float64)
print("src", src.shape, "tgt", tgt.shape, "->", model(src, tgt, tgt_is_causal=True).shape)
enc_layer = model.encoder.layers[0]
print("encoder layer: attention", enc_layer.self_attn.num_parameters(), "params, feed-forward",
      enc_layer.linear1.num_parameters() + enc_layer.linear2.num_parameters())  # fmt: skip
print("total:", model.num_parameters(), "parameters")

# %% [markdown]
# A GPT block is exactly a **pre-norm encoder layer with a causal mask** (and GELU):
# `numtrans/models/gpt.py` writes it out in a dozen lines, and `tests/test_models_gpt.py` checks
# it against `nn.TransformerEncoderLayer(norm_first=True, activation="gelu")`.
