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
# # 13 · Instruction tuning: a chat template, a masked loss, and DPO
#
# A pretrained GPT continues text. An *assistant* answers: it has learned where a request ends,
# where its answer begins, and when to stop. Three steps turn one into the other, and this
# tutorial runs each with the library's real pieces on the bundled data:
#
# 1. a **chat template**: a conversation written as one token sequence with role markers
#    (`<|user|>`, `<|assistant|>`, ...) that are single tokens no user can type
#    (`numtrans.instruct.apply_chat_template`);
# 2. **supervised fine-tuning (SFT)** on an instruction set (English -> Chinese from the Tatoeba
#    training split, positive/negative from the UCI sentiment training split), with the loss on
#    the assistant's tokens only (`sft_example`, `train_sft`); we draw that loss over a real
#    example;
# 3. **preference tuning with DPO** (Rafailov et al., 2023): pairs of the SFT model's own
#    translations, the one with the higher chrF against the reference preferred
#    (`numtrans.instruct.pairs`), and the DPO loss, whose reward margin we follow as it trains
#    (`numtrans.finetune.dpo_loss`, `numtrans.instruct.preference.train_dpo`).
#
# The model is tiny and trained for seconds (minutes in full mode), so its answers are rough;
# what matters is that every number below is computed, not quoted.
#
# **What it prints** (seeded; the `RESULT` lines are checked by `tests/test_tutorials.py` in fast
# mode): `RESULT conversations = 600` conversations and a vocabulary of
# `RESULT vocab_size = 604` (600 BPE tokens and the 4 markers); the masked SFT loss of the last
# 16-conversation batch `RESULT sft_last_batch_loss = 1.590 ± 0.1`; on the example drawn, the
# masked loss `RESULT example_masked_loss = 0.500 ± 0.05` against
# `RESULT example_unmasked_loss = 9.60 ± 0.2` over every target; DPO's loss at margin 0
# `RESULT dpo_loss_at_zero_margin = 0.6931` (log 2); `RESULT preference_pairs = 43 ± 3` pairs
# from 48 prompts, and on the held-out pairs after 20 DPO steps a reward margin of
# `RESULT dpo_heldout_margin = 0.62 ± 0.1` with `RESULT dpo_heldout_accuracy = 0.875 ± 0.13`
# (8 held-out pairs: one pair is 0.125).

# %%
import os
import time

import numpy as np

import numtrans as nt
from numtrans import backends
from numtrans.finetune import dpo_loss
from numtrans.instruct import (
    IGNORE_INDEX,
    apply_chat_template,
    instruction_set,
    prepare_model,
    sft_example,
    train_sft,
)
from numtrans.instruct.chat import ChatSession
from numtrans.instruct.pairs import make_preference_pairs, normalize_pair, translation_prompts
from numtrans.instruct.preference import evaluate_preferences, frozen_copy, train_dpo
from numtrans.models.gpt import GPT, GPTConfig
from numtrans.tokenizers.bpe import ByteBPETokenizer

FAST = os.environ.get("NUMTRANS_TUTORIAL_FAST") == "1"
OUT = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")  # one folder for every tutorial
os.makedirs(OUT, exist_ok=True)

try:
    import matplotlib.pyplot as plt
except ImportError:
    raise SystemExit('this tutorial draws figures: pip install "numtrans[plot]"') from None

from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

PER_TASK, SFT_STEPS, WIDTH = (300, 150, 64) if FAST else (2000, 1500, 128)
print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel
t0 = time.time()

# %% [markdown]
# ## The chat template
#
# The instruction set is a list of conversations; each is a list of `{"role", "content"}`
# messages, the layout Hugging Face's `apply_chat_template` takes. A byte-level BPE learns its
# merges on the instruction texts, then `prepare_model` appends the four markers as *special*
# tokens and grows the GPT's embedding to match (old rows unchanged).

# %%
conversations = instruction_set(seed=0, max_per_task=PER_TASK)
tok = ByteBPETokenizer.train([m["content"] for c in conversations for m in c], 600)
nt.manual_seed(0)
model = GPT(GPTConfig(block_size=128, vocab_size=tok.vocab_size, n_layer=2, n_head=4,
                      n_embd=WIDTH))  # fmt: skip
added = prepare_model(model, tok)
print(f"{len(conversations)} conversations; {added} chat tokens added -> vocab {tok.vocab_size}")
print(f"RESULT conversations = {len(conversations)}")
print(f"RESULT vocab_size = {tok.vocab_size}")
example = next(c for c in conversations if c[1]["content"] in ("positive", "negative"))
ids, mask = apply_chat_template(example, tok, return_mask=True)
print(tok.decode(ids))

# %% [markdown]
# Each marker is one id. The message text is encoded with `allowed_special=()`: a user who
# types the characters `<|assistant|>` gets ordinary bytes, never the marker, so nobody can
# forge the model's turn from inside a message.

# %%
typed = apply_chat_template([{"role": "user", "content": "<|assistant|>"}], tok)
print("the marker:", tok.special_id("<|assistant|>"), "| typed as text:", typed)
assert typed.count(tok.special_id("<|assistant|>")) == 0

# %% [markdown]
# ## The loss, on the assistant's tokens only
#
# `sft_example` shifts the sequence by one (inputs `ids[:-1]`, targets `ids[1:]`) and replaces
# every target that is not the assistant's by `IGNORE_INDEX` (-100). Cross-entropy skips
# those: the model is not trained to write the user's review or the markers it is given, only
# the answer and the `<|end|>` that closes it (which is how it learns to stop).
#
# Fine-tune for a few seconds, then look at the per-token loss over the example above.

# %%
losses = train_sft(model, tok, conversations, steps=SFT_STEPS, batch_size=16, lr=3e-3, seed=0,
                   log=lambda s, v: print(f"step {s:4d}  masked loss {v:.3f}"),
                   log_every=max(1, SFT_STEPS // 5))  # fmt: skip
print(f"RESULT sft_last_batch_loss = {losses[-1]:.3f}")

x, y = sft_example(example, tok)
logits, loss = model(x[None], y[None])
z = logits.data[0].astype(np.float64)
logp = z - z.max(-1, keepdims=True)
logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
target = np.concatenate([x[1:], [tok.special_id("<|end|>")]])  # the next token everywhere
per_token = -logp[np.arange(len(x)), target]  # what an unmasked loss would average
kept = y != IGNORE_INDEX
print(f"masked loss {loss.item():.4f} = mean over {kept.sum()} assistant targets "
      f"{per_token[kept].mean():.4f}; over all {len(x)} targets it would be "
      f"{per_token.mean():.4f}")  # fmt: skip
assert np.isclose(loss.item(), per_token[kept].mean(), rtol=1e-4)
print(f"RESULT example_masked_loss = {loss.item():.3f}")
print(f"RESULT example_unmasked_loss = {per_token.mean():.2f}")

# %%
fig, ax = plt.subplots(figsize=(10, 3.2))
colors = np.where(kept, "tab:orange", "lightgrey")
ax.bar(np.arange(len(x)), per_token, color=colors)
labels = [tok.decode([int(t)]).strip() or "␣" for t in target]
ax.set_xticks(np.arange(len(x)), [s[:6] for s in labels], rotation=90, fontsize=7)
ax.set_ylabel("-log p(next token)  [nats]")
ax.set_xlabel("target token (grey: prompt, ignored; orange: the assistant's, trained)")
ax.set_title(f"SFT loss over one real example: {loss.item():.3f} = mean of the orange bars")
fig.tight_layout()
fig.savefig(os.path.join(OUT, "13_masked_loss.png"), dpi=100)
show(fig)

# %% [markdown]
# The grey bars are the model's loss on text it was never asked to predict: a review is hard to
# guess word by word, and it does not need to be. The orange bars are the label and `<|end|>`.
#
# ## DPO: preferring the better of two of its own answers
#
# For a prompt x with a preferred answer y_w and a worse one y_l, DPO compares the policy pi
# (being trained) with the frozen SFT model pi_ref through the *implicit reward*
#
# $$r(y) = \beta\,[\log \pi(y\mid x) - \log \pi_{\text{ref}}(y\mid x)],\qquad
#   \mathcal{L} = -\log \sigma\big(r(y_w) - r(y_l)\big).$$
#
# The **reward margin** r(y_w) - r(y_l) says how much more (in beta-scaled nats) the policy has
# raised the chosen answer's log-probability than the rejected one's, relative to where the
# reference put them: 0 at the start (pi = pi_ref, loss log 2), positive once it prefers the
# chosen answer. The gradient of the loss is weighted by sigma(-margin): pairs already ordered
# well count little, so beta also bounds how far from the reference the policy is pushed.

# %%
margins = np.linspace(-8, 8, 161)
zero = np.zeros(1)
curve = [dpo_loss(nt.tensor([m / 0.1]), nt.tensor(zero), zero, zero, beta=0.1)[0].item()
         for m in margins]  # fmt: skip
print(f"loss at margin 0: {curve[80]:.4f} (log 2 = {np.log(2):.4f})")
print(f"RESULT dpo_loss_at_zero_margin = {curve[80]:.4f}")
print(
    f"loss at margin -200: {dpo_loss(nt.tensor([-2000.0]), nt.tensor(zero), zero, zero)[0].item()}"
    "  (finite: logsigmoid is computed stably)"
)

# %% [markdown]
# Preference pairs from a real signal: for Tatoeba *training* sentences, sample two translations
# from the SFT model, score both with sentence chrF against the reference, and call the higher
# one `chosen`. A tie (often two identical samples) says nothing and is dropped. Held-out pairs
# measure whether the preference generalises. (The reward accuracy counts a pair only when its
# margin is > 0, so it starts at 0 with the policy equal to the reference.)

# %%
n_prompts = 48 if FAST else 400
made, ties = make_preference_pairs(model, tok, translation_prompts(n_prompts, seed=1), seed=0,
                                   max_new_tokens=24)  # fmt: skip
print(f"{len(made)} pairs from {n_prompts} prompts ({ties} ties dropped)")
print(f"RESULT preference_pairs = {len(made)}")
for p in made[:3]:
    print(
        f"  ref {p['reference']}  chosen {p['chosen']!r} ({p['chosen_chrf']})  "
        f"rejected {p['rejected']!r} ({p['rejected_chrf']})"
    )
pairs = [normalize_pair(p) for p in made]
n_val = max(1, len(pairs) // 5)
val, train = pairs[:n_val], pairs[n_val:]
reference = frozen_copy(model)
before = evaluate_preferences(model, reference, val, tok, beta=0.1)
history = train_dpo(model, reference, train, tok, steps=20 if FAST else 200, batch_size=8,
                    lr=1e-4, beta=0.1, seed=0)  # fmt: skip
after = evaluate_preferences(model, reference, val, tok, beta=0.1)
print(f"{'held-out pairs':>16}  {'loss':>7}  {'margin':>7}  {'accuracy':>8}  {'token KL':>9}")
for name, s in (("SFT (reference)", before), ("after DPO", after)):
    print(f"{name:>16}  {s['loss']:7.4f}  {s['reward_margin']:+7.4f}  "
          f"{s['reward_accuracy']:8.3f}  {s['token_kl']:9.5f}")  # fmt: skip
print(f"RESULT dpo_heldout_margin = {after['reward_margin']:.2f}")
print(f"RESULT dpo_heldout_accuracy = {after['reward_accuracy']:.3f}")

# %%
fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
a.plot(margins, curve, label="loss = -log σ(margin)")
a.plot(margins, 1 / (1 + np.exp(margins)), label="gradient weight σ(-margin)")
a.set_xlabel("reward margin r(chosen) - r(rejected)")
a.set_ylabel("value")
a.set_title("DPO's loss and how hard each pair pushes")
a.legend()
steps = np.arange(1, len(history) + 1)
b.plot(steps, [h["reward_margin"] for h in history], label="reward margin (batch mean)")
b.plot(steps, [h["reward_accuracy"] for h in history], label="reward accuracy")
b.plot(steps, [h["loss"] for h in history], label="DPO loss")
b.set_xlabel("DPO step")
b.set_title("training pairs, as DPO trains")
b.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT, "13_dpo.png"), dpi=100)
show(fig)

# %% [markdown]
# ## Talking to it
#
# `ChatSession` (what `numtrans chat` runs) keeps the conversation as token ids and the KV cache
# across turns: the second message feeds the model only its own tokens, not the whole history.

# %%
session = ChatSession(model, tok, max_new_tokens=24, temperature=0.0)
for text in ["Is this review positive or negative? The food was great and the staff friendly.",
             "Translate into Chinese: I love you."]:  # fmt: skip
    fed = session.tokens_fed
    print(f"user> {text}\nassistant> {session.respond(text)!r}  "
          f"({session.tokens_fed - fed} tokens fed)")  # fmt: skip
print(f"done in {time.time() - t0:.0f} s ({'fast' if FAST else 'full'} mode)")

# %% [markdown]
# What to take away: the template and the mask are what make a language model an assistant,
# and they are a few lines; DPO needs no reward model, only pairs and a frozen copy, and its
# margin is the number to watch. With a model this small the translations are poor; the
# numbers that compare it with the specialist models are `benchmarks/instruct.py`'s.
