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
# # 06 · Pretraining a GPT on Tiny Shakespeare
#
# Pretraining is next-token prediction: show the model a window of text and, at every position,
# ask for the character that comes next. The loss is the mean cross-entropy, in nats per
# character; a model that knows nothing about the 65 characters scores ln 65 ≈ 4.17, and
# nanoGPT's small CPU model reaches about 1.88 on the validation text.
#
# This tutorial builds the whole job from the library's pieces, with the training loop written
# out so that every step is visible:
#
# 1. characters to ids (`CharTokenizer`), a 90/10 train/validation split, random batches;
# 2. a small `GPT`, `AdamW` with weight decay on the matrices only, warmup + cosine schedule;
# 3. the loop: forward, backward, gradient clipping, update, and a validation estimate;
# 4. sampling with different temperatures, top-k and top-p;
# 5. the attention maps of a trained head.
#
# Full mode took 5 min 10 s on a busy 2-core CPU (283 s of it training; one run, load average
# 6-8); `NUMTRANS_TUTORIAL_FAST=1` shrinks it to seconds, with a correspondingly worse model.
# `numtrans.recipes.pretrain.run` does the same job with checkpoints and logging
# (`numtrans pretrain` on the command line).
#
# **What it prints** (seeded). Full mode (one run): initial loss 4.227, validation loss 2.085
# at step 1,000, heads looking back 4.6 characters on average in layer 0 and 6.3 in layer 3.
# Fast mode, checked by `tests/test_tutorials.py`: the loss of the untrained model
# `RESULT initial_loss = 4.188 ± 0.005` (ln 65 = 4.174), the same number computed by hand from
# the logits, `RESULT by_hand_minus_library = 0 ± 1e-4`, and the validation loss at the last of
# its 100 steps `RESULT final_val_loss = 2.942 ± 0.02`; the heads of both layers look back
# `RESULT mean_distance_first_layer = 7.6 ± 0.3` and
# `RESULT mean_distance_last_layer = 7.8 ± 0.3` characters on average (section 5).

# %%
import math
import os
import time

import numpy as np

import numtrans as nt
from numtrans.data import load_corpus
from numtrans.functional.attention import attention_weights
from numtrans.generation.generate import generate
from numtrans.generation.sampling import filter_top_k, filter_top_p
from numtrans.metrics import perplexity
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.optim import AdamW, WarmupCosineLR, clip_grad_norm_, param_groups_for_weight_decay
from numtrans.tokenizers import CharTokenizer
from numtrans.training.pretrain_data import make_batcher
from numtrans.viz import attention_view, plot_attention, plot_history

FAST = os.environ.get("NUMTRANS_TUTORIAL_FAST") == "1"
OUT = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")  # one folder for every tutorial
os.makedirs(OUT, exist_ok=True)
nt.manual_seed(1337)  # model initialisation
rng = np.random.default_rng(1337)  # batch sampling

try:
    import matplotlib  # noqa: F401  (checked first: the figures come after minutes of work)
except ImportError:
    raise SystemExit('this tutorial draws figures: pip install "numtrans[plot]"') from None


from numtrans import backends  # noqa: E402
from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel

# %% [markdown]
# ## Characters to ids
#
# The vocabulary is every character that occurs in the text (65 for Tiny Shakespeare). The
# last 10% of the text is held out: the validation loss says how well the model predicts text
# it never trained on, which is what we actually care about.

# %%
text = load_corpus("tinyshakespeare")
tokenizer = CharTokenizer.from_text(text)
ids = np.asarray(tokenizer.encode(text), dtype=np.int64)
n_train = int(0.9 * len(ids))
train_ids, val_ids = ids[:n_train], ids[n_train:]
print(f"{len(text):,} characters, vocabulary {tokenizer.vocab_size}: {''.join(tokenizer.tokens)!r}")
print(f"train {len(train_ids):,} / validation {len(val_ids):,} ids; first ids {ids[:12].tolist()}")
print(f"a model that knows nothing scores ln {tokenizer.vocab_size} = {math.log(65):.3f} nats/char")

# %% [markdown]
# ## Batches: random windows, targets shifted by one
#
# A batch is B random windows of T + 1 characters: the first T are the input `x`, the last T
# the targets `y`. So `y[b, t]` is the character after `x[b, :t+1]`, and one window gives T
# training examples at once (the causal mask stops position t from peeking at t+1).

# %%
if FAST:
    cfg = dict(n_layer=2, n_head=4, n_embd=64, block_size=32)
    batch_size, max_steps, eval_interval, eval_batches = 8, 100, 50, 2
else:  # nanoGPT's Shakespeare-char CPU model, trained for half its 2,000 steps
    cfg = dict(n_layer=4, n_head=4, n_embd=128, block_size=64)
    batch_size, max_steps, eval_interval, eval_batches = 12, 1000, 100, 20
get_batch = make_batcher(train_ids, val_ids, cfg["block_size"], batch_size)
x, y = get_batch("train", rng)
print(f"x {x.shape}, y {y.shape}")
print("x[0]:", repr(tokenizer.decode(x[0].tolist())))
print("y[0]:", repr(tokenizer.decode(y[0].tolist())))

# %% [markdown]
# ## The model, the optimiser and the schedule
#
# `GPT` is nanoGPT's architecture: token + position embeddings, pre-LayerNorm blocks of causal
# self-attention and an MLP, a final LayerNorm and an output layer tied to the token embedding.
# At initialisation every character is about equally likely, so the first loss is close to
# ln 65.
#
# The loss, by hand first. For position $t$ of window $b$ the model outputs 65 scores (logits)
# $z_{b,t}$; log-softmax turns them into log-probabilities,
# $\ln p_{b,t}(c) = z_{b,t,c} - \ln \sum_{c'} e^{z_{b,t,c'}}$; the loss is the negative
# log-probability of the character that actually came next, averaged over all $B \cdot T$
# positions: $\mathcal{L} = -\frac{1}{BT}\sum_{b,t} \ln p_{b,t}(y_{b,t})$. Its exponential is
# the perplexity (tutorial 00).
#
# AdamW decays the weight matrices (`weight_decay=0.1`) but not the biases and LayerNorm gains
# (`param_groups_for_weight_decay`). The learning rate warms up linearly (large early updates
# through a random network are erratic) and then follows a cosine down to a tenth of its peak.

# %%
model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, dropout=0.0, **cfg))
print(f"GPT {cfg}: {model.num_params():,} parameters")
with nt.no_grad():
    logits0 = model(x)[0]  # (B, T, 65): no targets, so no loss
z = logits0.data.astype(np.float64)
log_probs = z - z.max(-1, keepdims=True)  # subtracting the max changes nothing, avoids overflow
log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))  # log-softmax
nll = -np.take_along_axis(log_probs, y[..., None], axis=-1)[..., 0]  # (B, T) nats per position
print(f"by hand: mean NLL {nll.mean():.4f} nats/char (ln 65 = {math.log(65):.4f})")

with nt.no_grad():
    _, loss0 = model(x, y)  # the library's loss: F.cross_entropy on the same logits
print(f"loss before training: {loss0.item():.4f}, the by-hand NLL {nll.mean():.4f}")
assert abs(nll.mean() - loss0.item()) < 1e-4
print(f"RESULT initial_loss = {loss0.item():.3f}")
print(f"RESULT by_hand_minus_library = {nll.mean() - loss0.item():.1e}")
print(
    f"perplexity = exp(loss) = {perplexity(nll):.1f} (of 65 characters: close to a uniform guess)"
)

groups = param_groups_for_weight_decay(model.named_parameters(), weight_decay=0.1)
print(f"decayed: {len(groups[0]['params'])} matrices, not decayed: {len(groups[1]['params'])}")
optimizer = AdamW(groups, lr=1e-3, betas=(0.9, 0.99))
scheduler = WarmupCosineLR(
    optimizer, warmup_steps=max_steps // 20, total_steps=max_steps, min_lr=1e-4
)


# %% [markdown]
# ## The training loop
#
# One step, as in every PyTorch training script:
#
# 1. `model(x, y)` returns the logits (B, T, 65) and the mean cross-entropy;
# 2. `loss.backward()` fills every parameter's `.grad`;
# 3. `clip_grad_norm_` shortens the whole gradient if its norm exceeds 1 (one odd batch should
#    not throw the weights far away);
# 4. `optimizer.step()` updates, `scheduler.step()` sets the next learning rate, and
#    `optimizer.zero_grad()` clears the gradients (backward *adds* into `.grad`).
#
# Every `eval_interval` steps we estimate the validation loss on a fixed set of validation
# batches, under `no_grad` (no graph is recorded) and in `eval()` mode (no dropout).


# %%
def estimate_val_loss() -> float:
    val_rng = np.random.default_rng(0)  # the same batches every time: comparable numbers
    model.eval()
    with nt.no_grad():
        losses = [model(*get_batch("val", val_rng))[1].item() for _ in range(eval_batches)]
    model.train()
    return float(np.mean(losses))


history = {"step": [], "train_loss": [], "val_loss": [], "lr": []}
model.train()
t0 = time.perf_counter()
for step in range(1, max_steps + 1):
    x, y = get_batch("train", rng)
    _, loss = model(x, y)
    loss.backward()
    grad_norm = clip_grad_norm_(model.parameters(), max_norm=1.0)
    lr = optimizer.param_groups[0]["lr"]  # the rate this update uses
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()

    val = estimate_val_loss() if step % eval_interval == 0 or step == max_steps else None
    for key, value in (("step", step), ("train_loss", loss.item()), ("val_loss", val), ("lr", lr)):
        history[key].append(value)
    if val is not None:
        print(
            f"step {step:5d} | train loss {loss.item():.3f} | val loss {val:.3f} | "
            f"lr {lr:.1e} | grad norm {float(grad_norm):.2f} | {time.perf_counter() - t0:5.1f} s"
        )
print(f"RESULT final_val_loss = {history['val_loss'][-1]:.3f}")
print(f"validation perplexity {perplexity(history['val_loss'][-1]):.1f} (from 65 at the start; "
      f"the bigram counts of tutorial 00 reach 12.0)")  # fmt: skip
tokens = max_steps * batch_size * cfg["block_size"]
print(f"{tokens:,} training tokens in {time.perf_counter() - t0:.1f} s")

# %% [markdown]
# The curves: the training loss (every step, noisy: each batch is different) and the
# validation loss (every `eval_interval` steps), with the learning-rate schedule below. While
# the two losses stay together the model is not overfitting; with this little training it has
# not even started to.

# %%
fig = plot_history(history, path=os.path.join(OUT, "06_loss.png"))
show(fig)
print("saved", os.path.join(OUT, "06_loss.png"))

# %% [markdown]
# ## Sampling: temperature, top-k, top-p
#
# To generate, feed a prompt, turn the logits of the last position into probabilities, draw a
# character, append it and repeat (`generate` does this with a key/value cache, so each new
# character costs one position, not the whole context).
#
# * **temperature** T divides the logits: T < 1 sharpens the distribution (safer, more
#   repetitive), T > 1 flattens it (more surprising, more misspelt); T → 0 is greedy argmax.
# * **top-k** keeps only the k most likely characters.
# * **top-p** (nucleus) keeps the smallest set of characters whose probabilities add up to p.
#
# First what these do to one next-character distribution:

# %%
prompt = "ROMEO:\nWhat light through yonder window b"
context = np.array([tokenizer.encode(prompt)[-cfg["block_size"] :]])
model.eval()
with nt.no_grad():
    logits = model(context)[0].data[0, -1].astype(np.float64)  # (65,) scores for the next char


def probs(z):
    e = np.exp(z - z[np.isfinite(z)].max())
    return e / e.sum()


def show_top(label, p, k=6):
    top = np.argsort(-p)[:k]
    kept = int((p > 0).sum())
    cells = "  ".join(f"{tokenizer.decode([int(i)])!r} {p[i]:.2f}" for i in top)
    print(f"{label:<16} {kept:2d} possible | {cells}")


for temperature in (0.5, 1.0, 2.0):
    show_top(f"T = {temperature}", probs(logits / temperature))
show_top("top-k = 5", probs(filter_top_k(logits[None], 5)[0]))
show_top("top-p = 0.9", probs(filter_top_p(logits[None], 0.9)[0]))

# %% [markdown]
# And whole samples, all from the same newline prompt and seed:

# %%
n_new = 80 if FAST else 300
start = np.array([[tokenizer.encode("\n")[0]]])
settings = [{"temperature": 0.0}, {"temperature": 0.5}, {"temperature": 1.0},
            {"temperature": 1.5}, {"temperature": 1.0, "top_k": 10},
            {"temperature": 1.0, "top_p": 0.9}]  # fmt: skip
for kw in settings:
    out = generate(model, start, n_new, rng=7, **kw)
    label = ", ".join(f"{k}={v}" for k, v in kw.items())
    print(f"---- {label} " + "-" * max(0, 60 - len(label)))
    print(tokenizer.decode(out[0, 1:].tolist()))

# %% [markdown]
# Greedy decoding (T = 0) soon loops on the most likely phrase; T = 1.5 invents words;
# top-k and top-p cut off the unlikely tail that produces most of the misspellings while
# keeping the variety.
#
# ## What does a trained head look at?
#
# Attention weights are softmax(q k^T / sqrt(d)) under the causal mask. To see them we run the
# model up to a block, apply that block's LayerNorm and its `c_attn` projection ourselves, split
# the result into queries, keys and values per head, and call
# `numtrans.functional.attention.attention_weights`, the same function the model's attention
# uses. As a check, the weights times the values must give the attention output the model
# computed.

# %%
line_start = text.index("\n", n_train + 1000) + 1  # a line of the validation text
snippet = text[line_start : line_start + min(32, cfg["block_size"])]
idx = np.array([tokenizer.encode(snippet)])
T = idx.shape[1]
H, C = cfg["n_head"], cfg["n_embd"]
hs = C // H


def attention_maps(layer: int):
    """(H, T, T) attention weights of block ``layer`` on ``idx``, and a consistency check."""
    with nt.no_grad():
        h = model.transformer["wte"](idx) + model.transformer["wpe"](np.arange(T))  # as GPT.forward
        for block in list(model.transformer["h"])[:layer]:
            h = block(h)
        block = model.transformer["h"][layer]
        a = block.ln_1(h)
        q, k, v = block.attn.c_attn(a).split(C, axis=-1)
        q, k, v = (t.reshape(1, T, H, hs).transpose(1, 2) for t in (q, k, v))  # (1, H, T, hs)
        w = attention_weights(q, k, is_causal=True)  # (1, H, T, T)
        y = (w @ v).transpose(1, 2).reshape(1, T, C)
        expected = block.attn(a)  # the model's own attention (through c_proj)
        assert np.allclose(block.attn.c_proj(y).data, expected.data, atol=1e-4)
    return w.data[0]


maps = np.stack([attention_maps(layer) for layer in range(cfg["n_layer"])])  # (L, H, T, T)
print(f"attention maps {maps.shape}; each row sums to 1: {np.allclose(maps.sum(-1), 1, atol=1e-5)}")

# %% [markdown]
# Some heads have simple jobs. Two easy ones to measure: how much a position attends to
# *itself* and to the *previous* character (the diagonal and the one below it).

# %%
print("layer head | to itself | to previous char | mean distance back")
distance = np.arange(T)[:, None] - np.arange(T)[None, :]  # query i, key j: i - j >= 0
back = np.zeros((cfg["n_layer"], H))
for layer in range(cfg["n_layer"]):
    for head in range(H):
        m = maps[layer, head]
        self_att = np.mean(np.diag(m))
        prev_att = np.mean(np.diag(m, k=-1))
        back[layer, head] = np.mean((m * np.maximum(distance, 0)).sum(-1))
        print(
            f"{layer:5d} {head:4d} | {self_att:9.2f} | {prev_att:16.2f} | {back[layer, head]:18.1f}"
        )
# A head that spreads evenly over the i + 1 keys it may see looks back i / 2 on average.
print(f"uniform attention over the causal window would look back {(T - 1) / 4:.2f} on average")
for layer in range(cfg["n_layer"]):
    print(
        f"layer {layer}: heads look back {back[layer].min():.1f}-{back[layer].max():.1f} characters"
    )
print(f"RESULT mean_distance_first_layer = {back[0].mean():.1f}")
print(f"RESULT mean_distance_last_layer = {back[-1].mean():.1f}")
layer, head = np.unravel_index(np.argmax(maps.diagonal(-1, -2, -1).mean(-1)), maps.shape[:2])
print(f"the most 'previous-character' head: layer {layer}, head {head}")

# %%
chars = [{"\n": "\\n", " ": "␣"}.get(c, c) for c in snippet]  # spaces shown as ␣
# All heads of the layer in a 2-column grid, each heatmap large enough to read its labels.
from matplotlib.figure import Figure  # noqa: E402  (no pyplot: nothing kept open)

rows = (H + 1) // 2
fig = Figure(figsize=(12, 6 * rows), layout="constrained")
for h, ax in enumerate(fig.subplots(rows, 2, squeeze=False).flat):
    if h >= H:  # an odd number of heads leaves one panel empty
        ax.axis("off")
        continue
    image = ax.imshow(maps[layer, h], cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(T), chars, fontsize=8)
    ax.set_yticks(range(T), chars, fontsize=8)
    ax.set(xlabel="key (character attended to)", ylabel="query (character attending)")
    ax.set_title(f"head {h}: looks back {back[layer, h]:.1f} characters on average", fontsize=10)
fig.colorbar(image, ax=fig.axes, shrink=0.6, label="attention weight")
fig.suptitle(f"layer {layer}, every head, after {max_steps} training steps")
fig.savefig(os.path.join(OUT, "06_attention_layer.png"), dpi=80)
show(fig)
path = os.path.join(OUT, "06_attention_head.png")
show(plot_attention(maps[layer, head], chars, path=path, title=f"layer {layer}, head {head}"))
print("saved", os.path.join(OUT, "06_attention_layer.png"), "and 06_attention_head.png")

# %% [markdown]
# **The same maps, interactive.** In a notebook the next cell shows `numtrans.viz.attention_view`:
# the head view (a line from each character to the ones it attends to; pick a layer and a head,
# hover a character to follow only its lines) and the model view (every layer x head as a small
# heatmap; click one to enlarge it), drawn by the same code as `numtrans serve`. It embeds the
# weights it draws, and they are the maps computed by hand above. A script computes the view and
# discards it (only a notebook shows a cell's last value); the PNGs above are its static copy.

# %%
view = attention_view(model, tokenizer, snippet)
assert np.allclose(np.array(view.data["weights"]), maps, atol=1e-5)  # the numbers drawn
view  # a notebook shows a cell's last value; a script discards it

# %% [markdown]
# Row i of a map is query position i; the upper triangle is empty because of the causal mask. What
# this run shows is in the "mean distance back" column and the per-layer ranges above. In fast mode
# (100 steps) every head looks back about 7.5-7.8 characters, which is what attention spread evenly
# over the visible window gives ((T - 1) / 4 = 7.75 for T = 32): the heads have not specialised yet.
# In the seeded full run (4 layers, 1,000 steps) layer 0's heads looked back 2.8-6.7 characters,
# layers 1 and 2 held the most local heads (1.7 and 2.4 characters, most of their weight on the
# current and the previous character) and layer 3 was the least local (5.9-7.0). So "early layers
# are the most local", often said of large models, is not something this small model shows. Local
# heads answer "what were the last few characters?"; others spread out: in the full run's grid,
# heads 1 and 3 of layer 2 put their weight on the last space, the start of the current word.
#
# **Where next.** `numtrans pretrain --preset shakespeare` runs nanoGPT's full 2,000-step
# configuration with checkpoints (about 1.9 nats/char); `benchmarks/shakespeare_char.py`
# times it. Things to try here: dropout 0.1 with a larger model, `pos="rope"` in `GPTConfig`,
# or a longer `block_size` and a look at how far back the heads then reach.
