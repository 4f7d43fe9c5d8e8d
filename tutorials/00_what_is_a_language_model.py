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
# # 00 · What is a language model?
#
# A language model gives a probability to every piece of text. Write the text as tokens
# $x_1, \dots, x_T$ (characters here; words or sub-words later). The chain rule of probability
# splits the probability of the whole into one prediction per position, with no assumption:
#
# $$P(x_1, \dots, x_T) = \prod_{t=1}^{T} P(x_t \mid x_{<t})$$
#
# So a model that can answer "what comes next, given everything so far?" scores any text, and
# it can *write* text: draw $x_1$, then $x_2$ given $x_1$, and so on. Every model in this
# course, from the bigram table below to GPT, is a different way of computing
# $P(x_t \mid x_{<t})$.
#
# How good is a model? Its average negative log-likelihood on text it has not seen, in nats
# per token, $\mathrm{NLL} = -\frac{1}{T}\sum_t \ln P(x_t \mid x_{<t})$, the same number
# that pretraining minimises (the cross-entropy loss). Its exponential is the **perplexity**:
# a model with perplexity 10 is as unsure as a fair choice among 10 tokens at every step.
#
# This lesson builds the simplest real language models by counting, on the bundled Tiny
# Shakespeare (1.1 M characters), and measures them.
#
# **What it prints** (the same in fast and full mode: counting takes a second; the `RESULT`
# lines are checked by `tests/test_tutorials.py`): `RESULT uniform_perplexity = 65.00`,
# `RESULT unigram_perplexity = 28.43`, `RESULT bigram_nll = 2.484` nats/char on the validation
# text and `RESULT bigram_perplexity = 11.99`.

# %%
import os

import numpy as np

import numtrans as nt
import numtrans.functional as F
from numtrans.data import load_corpus
from numtrans.metrics import perplexity
from numtrans.tokenizers import CharTokenizer

OUT = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")  # one folder for every tutorial
os.makedirs(OUT, exist_ok=True)
try:
    import matplotlib  # noqa: F401  (only the last figure needs it)

    from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

    HAVE_PLOT = True
except ImportError:
    print('no matplotlib: the figure is skipped (pip install "numtrans[plot]")')
    HAVE_PLOT = False

from numtrans import backends  # noqa: E402

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel

# %% [markdown]
# ## Text as ids, and a held-out part
#
# The vocabulary is every character in the text. The last 10% is held out: a model is judged on
# text it did not count (or train on), otherwise memorising would look like understanding.

# %%
text = load_corpus("tinyshakespeare")
tokenizer = CharTokenizer.from_text(text)
ids = np.asarray(tokenizer.encode(text), dtype=np.int64)  # (N,)
V = tokenizer.vocab_size
n_train = int(0.9 * len(ids))
train, val = ids[:n_train], ids[n_train:]
print(f"{len(ids):,} characters, vocabulary {V}; train {len(train):,}, validation {len(val):,}")

# %% [markdown]
# ## Model 0: uniform, and model 1: unigram (no context at all)
#
# Knowing nothing, every character gets $1/V$: NLL $= \ln V$ and perplexity exactly $V$. A
# *unigram* model counts how often each character occurs and ignores the context:
# $P(x_t \mid x_{<t}) = P(x_t) = \mathrm{count}(x_t) / N$. The space and `e` are common, `Z`
# is rare, and that alone is worth a lot.

# %%
print(f"uniform: NLL {np.log(V):.3f} nats/char, perplexity {perplexity(np.log(V)):.2f}")
counts1 = np.bincount(train, minlength=V) + 1.0  # +1: no character gets probability zero
p1 = counts1 / counts1.sum()  # (V,)
nll1 = -np.log(p1[val])  # (N_val,) one NLL per validation character
print(f"unigram: NLL {nll1.mean():.3f} nats/char, perplexity {perplexity(nll1):.2f}")
print(f"RESULT uniform_perplexity = {perplexity(np.log(V)):.2f}")
print(f"RESULT unigram_perplexity = {perplexity(nll1):.2f}")

# %% [markdown]
# ## Model 2: bigram (one character of context)
#
# Now condition on the previous character: $P(x_t \mid x_{<t}) \approx P(x_t \mid x_{t-1})$,
# estimated by counting pairs. `C[a, b]` is how often `b` follows `a`; each row, normalised, is a
# distribution over the next character. Adding a small $\alpha$ to every count (Laplace
# smoothing) keeps unseen pairs possible — without it a single unseen pair in the validation
# text would make its probability 0 and the NLL infinite.

# %%
alpha = 0.1
C = np.zeros((V, V))  # (V, V): C[previous, next]
np.add.at(C, (train[:-1], train[1:]), 1.0)
P2 = (C + alpha) / (C + alpha).sum(axis=1, keepdims=True)  # (V, V), rows sum to 1
nll2 = -np.log(P2[val[:-1], val[1:]])  # (N_val - 1,)
print(f"bigram:  NLL {nll2.mean():.3f} nats/char, perplexity {perplexity(nll2):.2f}")
print(f"RESULT bigram_nll = {nll2.mean():.3f}")
print(f"RESULT bigram_perplexity = {perplexity(nll2):.2f}")
following = P2[tokenizer.encode("q")[0]]
top = np.argsort(following)[::-1][:3]
print("after 'q':", ", ".join(f"{tokenizer.decode([int(i)])!r} {following[i]:.2f}" for i in top))

# %% [markdown]
# ## The same number as the loss a neural network minimises
#
# A neural language model outputs *logits* $z$ (one score per character) and the library's
# `F.cross_entropy` turns them into $-\ln \mathrm{softmax}(z)_{x_t}$, averaged. Give it the
# bigram table's log-probabilities as logits and it returns exactly the bigram NLL: training a
# GPT (tutorial 06) is searching for a function of the *whole* context whose logits make this
# number small, starting from $\ln 65 \approx 4.17$.

# %%
logits = nt.tensor(np.log(P2[val[:-1]]))  # (N_val - 1, V): row t scores x_{t+1}
loss = F.cross_entropy(logits, val[1:])
print(f"cross_entropy of the bigram logits: {float(loss.item()):.6f} (by hand {nll2.mean():.6f})")
assert abs(float(loss.item()) - nll2.mean()) < 1e-9

# %% [markdown]
# ## A language model writes
#
# Sampling from the chain rule: draw each character from the row of the one before. One
# character of context gives word-like fragments and the right punctuation habits, but no words
# to speak of; a GPT with 256 characters of context gives lines that scan (tutorial 06).

# %%
rng = np.random.default_rng(0)
x = tokenizer.encode("\n")[0]
out = []
for _ in range(200):
    x = rng.choice(V, p=P2[x])
    out.append(int(x))
print(tokenizer.decode(out))

# %% [markdown]
# ## Pretraining, then fine-tuning
#
# Counting stops working beyond a few characters of context: there are $65^{k}$ contexts of
# length $k$, and most never occur even once. A neural network *shares* what it learns across
# contexts, so it can condition on hundreds of tokens. The recipe of this course (and of every
# large model) is:
#
# 1. **Pretraining**: minimise the next-token NLL above on a lot of raw text (06; a BERT learns a
#    masked variant, 07). The model learns spelling, grammar, facts — whatever helps predict.
# 2. **Fine-tuning**: continue training the pretrained model on a small labelled task
#    (sentiment in 07, translation pairs in 09), often with a new output layer and another loss
#    (cross-entropy over classes, mean squared error for a score).
#
# ## The map of the series
#
# | # | lesson | what it adds |
# |---|--------|--------------|
# | 00 | what is a language model | the chain rule, NLL, perplexity, a counting baseline |
# | 01 | autograd | gradients by the chain rule, checked against finite differences |
# | 02 | self-attention | each position reads the others, masks |
# | 03 | multi-head attention and positions | heads, sinusoidal / learned / rotary positions |
# | 04 | the Transformer block | residuals, LayerNorm, the decoder layer |
# | 05 | tokenization and batching | characters, words, byte-pair encoding, WordPiece |
# | 06 | pretraining a GPT | the NLL above, minimised; sampling |
# | 07 | fine-tuning for sentiment | MLM pretraining, a classifier on top |
# | 08 | a real pretrained model | all-MiniLM-L6-v2 in NumPy |
# | 09 | translation | an encoder-decoder, beam search, BLEU |
# | 10 | fused attention | the kernel: online softmax and tiling |
#
# `tutorials/README.md` keeps the full map, with run times and extras.

# %%
if HAVE_PLOT:
    import matplotlib.pyplot as plt

    shown = [tokenizer.encode(c)[0] for c in " etaoinshrdlu.,\n"]
    labels = [repr(tokenizer.decode([i]))[1:-1].replace(" ", "␣") for i in shown]
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(P2[np.ix_(shown, shown)], cmap="viridis")
    ax.set_xticks(range(len(shown)), labels)
    ax.set_yticks(range(len(shown)), labels)
    ax.set_xlabel("next character $x_t$")
    ax.set_ylabel("previous character $x_{t-1}$")
    ax.set_title("bigram P(next | previous), counted on Tiny Shakespeare", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "00_bigram.png"), dpi=100)
    show(fig)
