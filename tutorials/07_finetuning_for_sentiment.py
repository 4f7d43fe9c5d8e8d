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
# # 07 · Pretrain, then fine-tune: sentiment analysis
#
# BERT's recipe has two stages. **Pretraining** teaches a Transformer encoder the language from
# unlabelled text by masked-language modelling: hide some tokens, predict them from both sides.
# **Fine-tuning** then puts a small head on the encoder and trains both on a labelled task, here
# whether a review sentence is positive or negative (the bundled UCI sentiment sentences: 3,000
# Amazon, IMDb and Yelp sentences, half positive).
#
# 1. a seeded train/test split, and a bag-of-words baseline to beat;
# 2. one masked-LM step written out (masking, the loss on the masked positions only), then
#    masked-LM pretraining of a small BERT (`numtrans.finetune.pretrain_mlm`);
# 3. one classification step written out (pool, linear, cross-entropy), then fine-tuning with a
#    classification head (`numtrans.finetune.finetune`), and the same encoder fine-tuned for
#    regression (a score, mean squared error);
# 4. evaluation: the confusion matrix, precision, recall and F1, computed by hand and by
#    `numtrans.metrics`.
#
# Full mode took 1 min 57 s on a busy 2-core CPU (one run, load average 7-9);
# `NUMTRANS_TUTORIAL_FAST=1` takes a few seconds, on a subset and with a few steps, so its small
# BERT learns next to nothing (it predicts one class for everything). The same steps on the command
# line:
#
# ```
# numtrans pretrain-mlm --data uci_sentiment --out runs/mlm
# numtrans finetune --model runs/mlm --task classify --data reviews.tsv --out runs/clf
# numtrans evaluate --model runs/clf --data test.tsv --confusion-matrix cm.png
# ```
#
# **What it prints** (seeded). Full mode (one run): bag of words 0.825, MLM validation loss 6.112
# against a unigram entropy of 6.10, fine-tuned accuracy 0.707 (macro-F1 0.706), regression MSE
# 0.219 (a constant scores 0.250; thresholded, its scores are 0.667 accurate). Fast mode, checked by
# `tests/test_tutorials.py`: bag-of-words accuracy `RESULT bow_accuracy = 0.725`; the hand-written
# MLM loss equals the library's, `RESULT mlm_by_hand_minus_library = 0 ± 1e-4`, and so does the
# classification loss, `RESULT clf_by_hand_minus_library = 0 ± 1e-4`; the unigram entropy of the
# masked tokens `RESULT unigram_entropy = 5.96` nats against the MLM validation loss
# `RESULT mlm_val_loss = 6.795 ± 0.02`; the fine-tuned classifier's accuracy
# `RESULT finetuned_accuracy = 0.550 ± 0.03` (the share of the majority class: it has learned
# nothing yet); the regression model's test MSE `RESULT regression_mse = 0.259 ± 0.01` (no better
# than always predicting the mean label, 0.248, after 10 steps).

# %%
import os
import tempfile
import time

import numpy as np

import numtrans as nt
import numtrans.functional as F
from numtrans import metrics, nn
from numtrans.data import mask_tokens
from numtrans.finetune import BagOfWordsClassifier, LabelMap, predict_logits, read_labeled
from numtrans.finetune.models import encode_texts, make_batch
from numtrans.optim import AdamW
from numtrans.recipes.finetune import FinetuneConfig, finetune
from numtrans.recipes.mlm import MLMConfig, build_mlm, pretrain_mlm
from numtrans.tokenizers import WordPieceTokenizer
from numtrans.viz import plot_confusion_matrix

FAST = os.environ.get("NUMTRANS_TUTORIAL_FAST") == "1"
OUT = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")  # one folder for every tutorial
os.makedirs(OUT, exist_ok=True)
WORK = tempfile.mkdtemp(prefix="numtrans-07-")

try:
    import matplotlib  # noqa: F401  (checked first: the figures come after minutes of work)
except ImportError:
    raise SystemExit('this tutorial draws figures: pip install "numtrans[plot]"') from None


from numtrans import backends  # noqa: E402
from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel

# %% [markdown]
# ## The data and a baseline
#
# `read_labeled` reads (text, label) rows from a TSV/CSV/JSONL file or a bundled table, keeping
# each row's line number for error messages. The split is shuffled with a fixed seed, so every
# model below is scored on the same 600 held-out sentences.

# %%
data = read_labeled("uci_sentiment")
train, test = data.split(0.2, seed=0)
if FAST:
    train, test = train.subset(range(400)), test.subset(range(200))
labels = LabelMap.fit(train.labels)  # "0" -> 0 (negative), "1" -> 1 (positive)
print(f"{len(train)} train / {len(test)} test sentences, classes {labels.names}")
for text, label in list(zip(train.texts, train.labels))[:4]:
    print(f"  {label}  {text}")

# %% [markdown]
# A bag of words ignores word order: each sentence becomes the set of its words and word pairs
# (tf-idf weighted), and logistic regression learns one weight per feature. It is the number to
# beat, and a strong one on short reviews, where single words ("great", "waste") carry most of
# the sentiment.

# %%
bow = BagOfWordsClassifier().fit(train.texts, labels.encode(train))
y_test = labels.encode(test)
bow_pred = bow.predict(test.texts)
print(f"bag of words: accuracy {metrics.accuracy_score(y_test, bow_pred):.3f}")
print(f"RESULT bow_accuracy = {metrics.accuracy_score(y_test, bow_pred):.3f}")
words = sorted(bow.vocab, key=lambda f: bow.W[bow.vocab[f], 1] - bow.W[bow.vocab[f], 0])
print("most negative features:", words[:8])
print("most positive features:", words[-8:])

# %% [markdown]
# ## Stage 1: masked-language-model pretraining
#
# `pretrain_mlm` learns a WordPiece vocabulary from the training sentences, then trains a
# `BertForMaskedLM`: 15% of the tokens of each sentence are chosen, 80% of those become `[MASK]`,
# 10% a random token, 10% stay; the loss is the cross-entropy of predicting the originals at the
# chosen positions only. A model that knows nothing scores ln(vocabulary size).
#
# First one step of it, written out. The labels hold the original token at the chosen positions
# and -100 everywhere else; the loss averages $-\ln p(\text{original})$ over the chosen
# positions $M$ only: $\mathcal{L}_{MLM} = -\frac{1}{|M|}\sum_{(b,t) \in M} \ln
# \mathrm{softmax}(z_{b,t})_{x_{b,t}}$. The other 85% of the positions are seen but not scored.

# %%
mlm_cfg = MLMConfig(
    vocab_size=2000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=256, max_steps=20 if FAST else 250, eval_interval=50,
    log_interval=2 if FAST else 10, batch_size=32, seed=0,
)  # fmt: skip
wp = WordPieceTokenizer.train(train.texts, mlm_cfg.vocab_size)  # pretrain_mlm's first step too
batch = make_batch(encode_texts(wp, train.texts[:16], mlm_cfg.max_length), wp.pad_id)
masked, mlm_labels = mask_tokens(
    batch["input_ids"], wp.vocab[wp.mask_token], wp.vocab_size, wp.special_ids,
    attention_mask=batch["attention_mask"], seed=0,
)  # fmt: skip
chosen = mlm_labels != -100  # (B, T) the positions that are scored
print(f"{batch['attention_mask'].sum()} real tokens, {chosen.sum()} chosen")
nt.manual_seed(0)
step_model = build_mlm(mlm_cfg, wp.vocab_size).eval()  # eval: no dropout, so exact numbers
logits = step_model(masked, attention_mask=batch["attention_mask"]).logits  # (B, T, vocab)
z = logits.data.astype(np.float64)[chosen]  # (|M|, vocab): only the chosen rows count
log_probs = z - z.max(-1, keepdims=True)
log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
by_hand = -log_probs[np.arange(len(z)), mlm_labels[chosen]].mean()
out = step_model(masked, attention_mask=batch["attention_mask"], labels=mlm_labels)
print(f"MLM loss by hand {by_hand:.4f}, library {out.loss.item():.4f}, "
      f"ln(vocab) = {np.log(wp.vocab_size):.4f}")  # fmt: skip
print(f"RESULT mlm_by_hand_minus_library = {by_hand - out.loss.item():.1e}")
optimizer = AdamW(step_model.parameters(), lr=1e-3)
out.loss.backward()  # gradients flow only from the chosen positions
optimizer.step()
optimizer.zero_grad()
after = step_model(masked, attention_mask=batch["attention_mask"], labels=mlm_labels).loss
print(f"after one AdamW step the same batch scores {after.item():.4f}")

# %% [markdown]
# `pretrain_mlm` repeats this for `max_steps` random batches (new masks each time), with a
# warm-up + cosine schedule and dropout on:

# %%
start = time.perf_counter()
mlm = pretrain_mlm(train.texts, mlm_cfg, out_dir=os.path.join(WORK, "mlm"), say=print)
print(f"pretraining took {time.perf_counter() - start:.0f} s")
print(f"RESULT mlm_val_loss = {mlm['best_val']:.3f}")

# %% [markdown]
# Is that loss good? A model that ignores the context and always predicts each token's overall
# frequency scores the **unigram entropy** $H = -\sum_w p(w) \ln p(w)$ of the tokens it is asked
# for (every real token is equally likely to be chosen). Count it on the training sentences:

# %%
tok = mlm["tokenizer"]
counts = np.zeros(tok.vocab_size)
for ids_ in encode_texts(tok, train.texts, mlm_cfg.max_length):
    real = [i for i in ids_ if i not in tok.special_ids]
    np.add.at(counts, real, 1)
p_w = counts[counts > 0] / counts.sum()
unigram_entropy = float(-(p_w * np.log(p_w)).sum())
print(f"ln(vocab) = {np.log(tok.vocab_size):.2f}, unigram entropy {unigram_entropy:.2f}, "
      f"MLM validation loss {mlm['best_val']:.2f} nats")  # fmt: skip
print(f"RESULT unigram_entropy = {unigram_entropy:.2f}")

from matplotlib.figure import Figure  # noqa: E402  (no pyplot: nothing kept open)

hist = mlm["history"]
fig = Figure(figsize=(6, 3.5), layout="constrained")
ax = fig.subplots()
ax.plot(hist["step"], hist["train_loss"], label="MLM training loss (logged steps)")
val_steps = [(st, v) for st, v in zip(hist["step"], hist["val_loss"]) if v is not None]
ax.plot(*zip(*val_steps), "o", label="MLM validation loss")
ax.axhline(np.log(tok.vocab_size), color="gray", ls="--", label="ln(vocab): knows nothing")
ax.axhline(unigram_entropy, color="black", ls=":", label="unigram entropy: knows frequencies")
ax.set(xlabel="pretraining step", ylabel="loss (nats per masked token)")
ax.set_title(f"MLM pretraining on {len(train)} sentences", fontsize=10)
ax.legend(fontsize=8)
fig.savefig(os.path.join(OUT, "07_mlm_vs_unigram.png"), dpi=100)
show(fig)

# %% [markdown]
# What has it learned? Ask it to fill in a blank. (With a few thousand sentences and a minute
# of training, expect frequent words that fit the grammar, not deep understanding.)

# %%
model = mlm["model"]
left, right = "the food was", "and the service was great."
piece = lambda text: tok.encode(text, add_special_tokens=False)  # noqa: E731
cls, sep, mask = (tok.vocab[t] for t in (tok.cls_token, tok.sep_token, tok.mask_token))
ids = np.array([[cls, *piece(left), mask, *piece(right), sep]])
with nt.no_grad():
    logits = model(ids).logits.numpy()[0]  # (T, vocab)
where = len(piece(left)) + 1
best = np.argsort(logits[where])[::-1][:5]
print(f"{left} [MASK] {right} ->", [tok.tokens[i] for i in best])

# %% [markdown]
# ## Stage 2: fine-tuning
#
# `finetune` keeps the pretrained encoder, drops the MLM head and adds a classifier: the
# sentence vector is the **mean** of the encoder's token vectors (padding excluded), and
# `logits = W s + b` gives one score per class. Training minimises the cross-entropy with
# AdamW; the learning rate warms up, then decays linearly to 0.
#
# Two knobs protect what pretraining learned: `freeze=True` trains the head alone, and
# `body_lr` gives the encoder a smaller learning rate than the new head (optimiser parameter
# groups). The result is saved with its tokenizer and `labels.json` (the class names in id order).
#
# One step of it first, by hand, on 16 training sentences: the pretrained encoder gives
# $h_{b,t}$ (B, T, H); the mean over the real tokens is the sentence vector
# $s_b = \sum_t m_{b,t} h_{b,t} / \sum_t m_{b,t}$ (B, H); a new linear layer gives two logits
# $W s_b + c$ (B, 2); the loss is the cross-entropy with the class ids,
# $-\frac{1}{B}\sum_b \ln \mathrm{softmax}(W s_b + c)_{y_b}$.

# %%
body = mlm["model"].bert  # the pretrained encoder (the MLM head is not used)
body.eval()  # no dropout, so the numbers are exact
enc = make_batch(encode_texts(tok, train.texts[:16], mlm_cfg.max_length), tok.pad_id)
y16 = labels.encode(train)[:16]
h = body(enc["input_ids"], None, enc["attention_mask"]).last_hidden_state  # (16, T, 64)
m = enc["attention_mask"][:, :, None].astype(h.dtype)  # (16, T, 1): 1 = real token
sentence = (h * m).sum(axis=1) / m.sum(axis=1)  # (16, 64) mean pooling
nt.manual_seed(0)
head = nn.Linear(mlm_cfg.hidden_size, labels.num_labels)  # new, random
clf_logits = head(sentence)  # (16, 2)
zc = clf_logits.data.astype(np.float64)
lp = zc - zc.max(-1, keepdims=True)
lp -= np.log(np.exp(lp).sum(-1, keepdims=True))
clf_by_hand = -lp[np.arange(16), y16].mean()
clf_loss = F.cross_entropy(clf_logits, y16)
print(f"classification loss by hand {clf_by_hand:.4f}, F.cross_entropy {clf_loss.item():.4f} "
      f"(ln 2 = {np.log(2):.4f})")  # fmt: skip
print(f"RESULT clf_by_hand_minus_library = {clf_by_hand - clf_loss.item():.1e}")
clf_loss.backward()  # reaches the head *and* every encoder weight: both are fine-tuned
query_grad = body.encoder.layer[0].attention.self.query.weight.grad
print(f"gradient norms: head {np.linalg.norm(head.weight.grad):.3f}, "
      f"encoder's first query matrix {np.linalg.norm(query_grad):.1e}")  # fmt: skip
body.zero_grad()

# %% [markdown]
# `finetune` does this over the training set for a few epochs (dropout on, a new head
# initialised inside, the body at `body_lr`), and evaluates on the test sentences:

# %%
ft_cfg = FinetuneConfig(
    epochs=1 if FAST else 3, batch_size=32, lr=5e-4, body_lr=2e-4, log_interval=25,
    max_steps=10 if FAST else None, seed=0,
)  # fmt: skip
clf_dir = os.path.join(WORK, "clf")
result = finetune(os.path.join(WORK, "mlm"), train, ft_cfg, val=test, out_dir=clf_dir, say=print)
print(sorted(os.listdir(clf_dir)))
print(open(os.path.join(clf_dir, "labels.json")).read())

# %% [markdown]
# ## Evaluation: the confusion matrix, precision, recall, F1
#
# Rows of the confusion matrix are the true classes, columns the predicted ones. For the
# positive class, with TP, FP, FN the true positives, false positives and false negatives:
#
# * precision = TP / (TP + FP): of the sentences called positive, how many are;
# * recall = TP / (TP + FN): of the positive sentences, how many were found;
# * F1 = 2 · precision · recall / (precision + recall), their harmonic mean: high only if both are.
#
# Macro-F1 averages F1 over the classes, each counting equally; accuracy is the diagonal's
# share. On balanced data they are close; on skewed data, accuracy flatters a model that
# always predicts the majority class, and macro-F1 does not.

# %%
m = result.metrics
cm = np.array(m["confusion_matrix"])
print("confusion matrix (rows: true neg/pos, columns: predicted neg/pos)\n", cm)
tp, fp, fn = cm[1, 1], cm[0, 1], cm[1, 0]
precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
f1 = 2 * precision * recall / max(precision + recall, 1e-12)
print(f"positive class by hand: precision {precision:.3f}, recall {recall:.3f}, F1 {f1:.3f}")
pred = predict_logits(result.model, result.tokenizer, test.texts).argmax(axis=1)
print(f"numtrans.metrics:       F1 {metrics.f1_score(y_test, pred):.3f}")
print(f"RESULT finetuned_accuracy = {m['accuracy']:.3f}")
print(m["report"])
fig = plot_confusion_matrix(
    cm, ["negative", "positive"], path=os.path.join(OUT, "07_confusion.png")
)
show(fig)

# %% [markdown]
# ## The other fine-tuning loss: regression with mean squared error
#
# When the target is a number (a similarity score, a star rating, a price), the head has one
# output and the loss is the mean squared error, $\frac{1}{B}\sum_b (\hat y_b - y_b)^2$, the loss
# of tutorial 01. The bundled sentences only have 0/1 labels, so here the number to predict is
# the label itself: the model learns a positivity score, and thresholding it at 0.5 gives a
# class. A model that always predicts the mean label scores an MSE of about 0.25 (the variance
# of a balanced 0/1 label). `task="regression"` (`numtrans finetune --task regress`) is the only
# change; evaluation reports MSE, MAE and the Pearson correlation instead of accuracy.

# %%
reg_data = read_labeled("uci_sentiment", task="regression")  # the labels as floats
reg_train, reg_test = reg_data.split(0.2, seed=0)  # the same seeded split as above
if FAST:
    reg_train, reg_test = reg_train.subset(range(400)), reg_test.subset(range(200))
assert reg_test.texts == test.texts
reg_cfg = FinetuneConfig(
    task="regression", epochs=1 if FAST else 3, batch_size=32, lr=5e-4, body_lr=2e-4,
    log_interval=25, max_steps=10 if FAST else None, seed=0,
)  # fmt: skip
reg = finetune(os.path.join(WORK, "mlm"), reg_train, reg_cfg, val=reg_test,
               out_dir=os.path.join(WORK, "reg"), say=print)  # fmt: skip
score = predict_logits(reg.model, reg.tokenizer, reg_test.texts)[:, 0]  # (N,) one number each
target = np.asarray(reg_test.labels, dtype=np.float64)
mse = np.mean((score - target) ** 2)
print(f"MSE by hand {mse:.4f}, finetune's report {reg.metrics['mse']:.4f}; "
      f"always predicting the mean label: {np.var(target):.4f}")  # fmt: skip
print(f"scores range {score.min():.2f}..{score.max():.2f}; thresholded at 0.5 they are "
      f"{np.mean((score > 0.5) == (target > 0.5)):.3f} accurate")  # fmt: skip
print(f"RESULT regression_mse = {reg.metrics['mse']:.3f}")

# %% [markdown]
# ## How do they compare?
#
# `benchmarks/sentiment.py` runs the full-size versions on the 600 held-out sentences (one
# run on a busy 2-core CPU):
#
# | model | accuracy | macro-F1 | time |
# |---|---|---|---|
# | bag of words (logistic regression) | 0.825 | 0.825 | 4 s |
# | small BERT (0.9M), MLM-pretrained on the 2,400 training sentences, fine-tuned | 0.745 | 0.745 | 412 s |
# | the same model and vocabulary fine-tuned from random weights | 0.807 | 0.807 | 51 s |
# | all-MiniLM-L6-v2, frozen, linear head on its sentence vectors | 0.902 | 0.902 | 129 s |
# | all-MiniLM-L6-v2, fine-tuned (2 epochs) | 0.910 | 0.910 | 635 s |
#
# Pretraining on 2,400 sentences (28,000 words) did not help, it hurt. Its masked-LM loss ended
# near 6.0 nats, barely below what a model that only knows how frequent each token is would
# score: the unigram entropy, computed in stage 1 above for this tutorial's vocabulary
# (6.10 nats in full mode, where this tutorial's own MLM ends at 6.11; the same count with the
# benchmark's 4,000-token vocabulary, `MLMConfig()`'s default, gives 6.25). So
# little text teaches little beyond word frequencies, and those features are a worse start than
# random weights (whose mean-pooled output is close to an average of word embeddings, a learned
# bag of words). MiniLM read about a billion sentences; even frozen, its sentence vectors
# separate positive from negative reviews better than anything trained here. Pretraining pays
# off at scale, which is why one downloads a pretrained model: tutorial 08 loads one in NumPy.

# %%
print(f"this run: bag of words {metrics.accuracy_score(y_test, bow_pred):.3f}, "
      f"fine-tuned small BERT {m['accuracy']:.3f} (macro-F1 {m['macro_f1']:.3f})")  # fmt: skip
