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
# # 05 · Tokenization and batching
#
# A language model never sees text: it sees integer ids. This tutorial follows text from the
# bundled corpora to the NumPy batches a training loop consumes:
#
# 1. four tokenizers side by side on the same English and Chinese sentences;
# 2. byte-level BPE learning to merge the UTF-8 bytes of Chinese characters (the Four Books);
# 3. building a word vocabulary: `min_freq`, `max_size` and the `<unk>` rate;
# 4. causal-LM windows, padding and attention masks, BERT's masked-LM masking.
#
# Everything runs offline in a few seconds (`NUMTRANS_TUTORIAL_FAST=1` shrinks it further).
#
# **What it prints** (deterministic; the `RESULT` lines are checked by `tests/test_tutorials.py`
# in fast mode): the English sentence is `RESULT bpe_ids_en = 15` byte-BPE ids and
# `RESULT wordpiece_ids_en = 16` WordPiece ids; the Four-Books BPE learns its first two-character
# token at `RESULT first_two_char_merge = 18` (28 in full mode, which trains on twice the text);
# a word vocabulary with `min_freq=2` leaves `RESULT unk_percent_min_freq_2 = 12.2` % of the
# validation words unknown; BERT's masking chooses `RESULT mlm_chosen_percent = 15.0` % of the
# tokens and turns `RESULT mlm_masked_percent = 79.8` % of those into `[MASK]`.

# %%
import os
import time

import numpy as np

from numtrans.data import (
    CausalLMDataset,
    Collator,
    DataLoader,
    load_corpus,
    mask_tokens,
    train_val_split,
)
from numtrans.tokenizers import ByteBPETokenizer, CharTokenizer, WordPieceTokenizer, WordTokenizer

FAST = os.environ.get("NUMTRANS_TUTORIAL_FAST") == "1"


def table(headers, rows):
    """Print rows as a Markdown table (columns padded to their widest cell)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print(line(r))


from numtrans import backends  # noqa: E402

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel


# %% [markdown]
# ## The corpora
#
# Four real corpora ship with numtrans, gzip-compressed, checked against their published
# sha256 on first use: Tiny Shakespeare, the UCI sentiment sentences, Tatoeba English–Chinese
# pairs (with their attribution column) and the Four Books (四书) in classical Chinese.

# %%
shakespeare = load_corpus("tinyshakespeare")
sishu = load_corpus("sishu_zh")
sentiment = load_corpus("uci_sentiment")  # rows: (source, label, sentence)
pairs = load_corpus("tatoeba_cmn_eng")  # rows: (English, Chinese, attribution)
table(
    ["corpus", "kind", "size", "first item"],
    [
        ("tinyshakespeare", "text", f"{len(shakespeare):,} chars", repr(shakespeare[:30])),
        ("sishu_zh", "text", f"{len(sishu):,} chars", repr(sishu[:12])),
        ("uci_sentiment", "rows", f"{len(sentiment):,}", sentiment[0][1:]),
        ("tatoeba_cmn_eng", "rows", f"{len(pairs):,}", pairs[100][:2]),
    ],
)

# %% [markdown]
# ## Four tokenizers, one interface
#
# Each tokenizer is built from data, then `encode(text) -> list[int]` and `decode(ids)`.
#
# * **char**: one id per character; the vocabulary is every character of the training text.
# * **word**: rule-based words, numbers and punctuation; rare words become `<unk>`.
# * **byte-level BPE** (GPT-2): starts from the 256 bytes and learns merges of frequent pairs,
#   so it never meets an unknown character.
# * **WordPiece** (BERT): lowercases, strips accents, splits CJK characters and punctuation,
#   then cuts words into the longest known pieces (`##` marks a continuation).

# %%
english = [r[0] for r in pairs] + [r[2] for r in sentiment]
chinese = [r[1] for r in pairs] + sishu.split("\n")
step = 8 if FAST else 4
texts = english[::step] + chinese[::step] + sishu.split("\n")  # a list of sentences
bpe_text = shakespeare[:100_000] + sishu + "\n".join(english[::8] + chinese[::8])

t0 = time.perf_counter()
char_tok = CharTokenizer.from_text("\n".join(texts), special_tokens=["<pad>", "<unk>"])
word_tok = WordTokenizer.from_texts(texts, min_freq=2, lowercase=True)
bpe_tok = ByteBPETokenizer.train(bpe_text, vocab_size=2000, special_tokens=["<|endoftext|>"])
wp_tok = WordPieceTokenizer.train(texts, vocab_size=6000)  # the CJK characters alone take ~3,800
print(f"built four tokenizers in {time.perf_counter() - t0:.1f} s")

en = "The movie wasn't bad; I'd watch it again!"
zh = "学而时习之，不亦说乎？"
tokenizers = [("char", char_tok), ("word", word_tok), ("byte BPE", bpe_tok), ("WordPiece", wp_tok)]


def pieces(tok, text):
    """Readable pieces: BPE tokens are shown as the text of their bytes (or hex if partial)."""
    if isinstance(tok, ByteBPETokenizer):
        out = []
        for i in tok.encode(text):
            raw = tok.token_bytes(i)
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append("<" + raw.hex(" ") + ">")
        return out
    if isinstance(tok, WordPieceTokenizer):
        return tok.tokenize(text)
    return [tok.tokens[i] for i in tok.encode(text)]


rows = []
for name, tok in tokenizers:
    for text in (en, zh):
        ids = tok.encode(text)
        shown = " · ".join(pieces(tok, text))
        rows.append((name, tok.vocab_size, len(ids), shown[:70]))
table(["tokenizer", "vocab", "#ids", "pieces"], rows)
print(f"RESULT bpe_ids_en = {len(bpe_tok.encode(en))}")
print(f"RESULT wordpiece_ids_en = {len(wp_tok.encode(en))}")

# %% [markdown]
# The char tokenizer needs one id per character. The word tokenizer is shortest on English
# but splits Chinese into single characters (there are no spaces to split on) and sends
# unseen words to `<unk>`. BPE and WordPiece sit between the two: frequent words are one
# token, rarer ones a few pieces, and BPE has learned whole Chinese characters (3 bytes
# each) from the Four Books in its training text. All four decode back:
# exactly for char and BPE, up to spacing for word (which joins with spaces), and for WordPiece
# up to case, accents *and spacing*: it splits off punctuation and joins every piece with a
# space, so "wasn't" comes back as "wasn ' t" and "again!" as "again !". (Hugging Face's BERT
# decoder tidies some of this with rules; the information is lost either way.)

# %%
table(
    ["tokenizer", "decode(encode(en))"],
    [(name, tok.decode(tok.encode(en), skip_special_tokens=True)) for name, tok in tokenizers],
)

# %% [markdown]
# ## BPE merges the UTF-8 bytes of Chinese characters
#
# A Chinese character is three UTF-8 bytes: 学 = `e5 ad a6`. Trained on the Four Books alone,
# byte-level BPE first merges byte pairs shared by many characters (the leading bytes of a
# Unicode block), then whole characters, then frequent words such as 子曰 ("the Master said").

# %%
sishu_bpe = ByteBPETokenizer.train(sishu[: 30_000 if FAST else 60_000], vocab_size=256 + 300)


def show(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "<" + raw.hex(" ") + ">"


merge_rows = []
for rank, (a, b) in enumerate(sishu_bpe.merges[:12]):
    left, right = (sishu_bpe.token_bytes(sishu_bpe.token_to_id(t)) for t in (a, b))
    merge_rows.append((rank, show(left), show(right), show(left + right)))
table(["rank", "left", "right", "merged"], merge_rows)

first_char = next(r for r, (a, b) in enumerate(sishu_bpe.merges) if len(a + b) == 3)
first_word = next(r for r, (a, b) in enumerate(sishu_bpe.merges) if len(a + b) >= 6)
print(f"first whole character at merge {first_char}, first two-character token at {first_word}")
print(f"RESULT first_two_char_merge = {first_word}")
sample = "子曰：学而时习之"
table(
    ["text", "UTF-8 bytes", "BPE tokens"],
    [(sample, len(sample.encode()), " · ".join(pieces(sishu_bpe, sample)))],
)
for char in "时习":
    print(
        f"{char}: UTF-8 {char.encode().hex(' ')}, seen {sishu.count(char)} times in the Four Books"
    )

# %% [markdown]
# With only 300 merges, 子曰 ("the Master said", the most frequent pair of characters) is one
# token, but 时 and 习 are not: they come out as `<e6 97> · <b6>` and `<e4 b9> · <a0>`, a merged
# pair of leading bytes plus a single byte. Each occurs only a handful of times (counted
# above, in the whole text; the BPE saw only its first part), too rare to win one of 300 merges
# against the pieces that thousands of characters share (the leading bytes of a Unicode block). The pieces are not characters and do not decode on their own, but
# together they give back the exact bytes: byte-level BPE never needs an unknown token. The
# larger BPE of the first table, trained on more text with 2,000 merges, has both as whole
# characters.

# %% [markdown]
# ## Building a word vocabulary
#
# `min_freq` drops words seen fewer times; `max_size` caps the vocabulary (the seven special
# tokens `<pad> <unk> <bos> <eos> <mask> <cls> <sep>` always hold ids 0–6). A smaller
# vocabulary means more `<unk>` on text the tokenizer has not seen.

# %%
sentences = [r[2] for r in sentiment]
train_sents, val_sents = sentences[:2400], sentences[2400:]
vocab_rows = []
for min_freq, max_size in [(1, None), (2, None), (5, None), (1, 500)]:
    tok = WordTokenizer.from_texts(
        train_sents, min_freq=min_freq, max_size=max_size, lowercase=True
    )
    val_ids = np.concatenate([tok.encode(s) for s in val_sents])
    vocab_rows.append((min_freq, max_size, tok.vocab_size, f"{(val_ids == tok.unk_id).mean():.1%}"))
    if (min_freq, max_size) == (2, None):
        print(f"RESULT unk_percent_min_freq_2 = {100 * (val_ids == tok.unk_id).mean():.1f}")
table(["min_freq", "max_size", "vocab size", "<unk> on validation"], vocab_rows)
print("first ids:", list(enumerate(tok.tokens[:12])))

# %% [markdown]
# ## Causal-LM windows
#
# For next-token prediction a token stream is cut into windows of `block_size`; the target is
# the input shifted by one, so each window holds `block_size` predictions. nanoGPT's split keeps
# the first 90% of Tiny Shakespeare for training.

# %%
train_part, val_part = train_val_split(shakespeare, 0.1)
shk_tok = CharTokenizer.from_text(shakespeare)
ds = CausalLMDataset(shk_tok.encode(train_part[:10_000]), block_size=8)
x, y = ds[0]
table(
    ["position", *range(8)],
    [
        ("input", *[repr(shk_tok.tokens[i]) for i in x]),
        ("target", *[repr(shk_tok.tokens[i]) for i in y]),
    ],
)
xb, yb = ds.random_batch(4, seed=0)
print(f"{len(ds)} sequential windows; a random batch has shape {xb.shape} (B, T), dtype {xb.dtype}")

# %% [markdown]
# ## Padding and attention masks
#
# Sentences have different lengths; a batch is rectangular. Short rows are padded with the pad
# id, `attention_mask` marks real tokens (1) and padding (0), and for a sentence pair
# `token_type_ids` tell BERT which sentence a token belongs to.

# %%
batch = wp_tok(["Great phone!", "The battery died after a week."], ["很好", "太差了"], padding=True)
for b in range(2):
    toks = [wp_tok.tokens[i] for i in batch["input_ids"][b]]
    table(
        ["", *range(len(toks))],
        [
            ("token", *toks),
            ("id", *batch["input_ids"][b]),
            ("type", *batch["token_type_ids"][b]),
            ("mask", *batch["attention_mask"][b]),
        ],
    )
    print()

# %% [markdown]
# For training, labels are padded with `ignore_index = -100` so the loss skips them. A
# `DataLoader` with a seeded shuffle and a `Collator` produces such batches:

# %%
examples = [
    {"input_ids": ids[:-1], "labels": ids[1:]} for ids in map(word_tok.encode, sentences[:6])
]
loader = DataLoader(
    examples, batch_size=3, shuffle=True, seed=0, collate_fn=Collator(word_tok.pad_id)
)
first = next(iter(loader))
table(["key", "shape", "row 0"], [(k, v.shape, v[0].tolist()) for k, v in first.items()])

# %% [markdown]
# ## Masked-language-model masking
#
# BERT learns by filling blanks: 15% of the non-special positions are chosen; of those 80%
# become `[MASK]`, 10% a random token, 10% stay as they are. Labels hold the original token at
# chosen positions and -100 everywhere else. Special tokens and padding are never chosen.

# %%
mlm_batch = wp_tok(
    ["the food was delicious and the service was friendly", "not worth the money"], padding=True
)
mask_id = wp_tok.token_to_id("[MASK]")


def mlm(seed):
    return mask_tokens(
        mlm_batch["input_ids"],
        mask_id=mask_id,
        vocab_size=wp_tok.vocab_size,
        special_ids=wp_tok.special_ids,
        mlm_probability=0.3,  # larger than BERT's 0.15, to see a few in a short example
        seed=seed,
    )


def outcomes(masked, labels):
    chosen = labels != -100
    ids = mlm_batch["input_ids"]
    return {
        "mask": (masked[chosen] == mask_id).any(),
        "random": ((masked != ids) & (masked != mask_id))[chosen].any(),
        "keep": (masked[chosen] == ids[chosen]).any(),
    }


# Any seed is a fair draw; we take the first one whose example shows all three outcomes.
seed = next(s for s in range(100) if all(outcomes(*mlm(s)).values()))
masked, labels = mlm(seed)
print(f"seed {seed}")
for b in range(2):
    n = int(mlm_batch["attention_mask"][b].sum())  # the real tokens, no padding
    table(
        ["", *range(n)],
        [
            ("input", *[wp_tok.tokens[i] for i in mlm_batch["input_ids"][b][:n]]),
            ("masked", *[wp_tok.tokens[i] for i in masked[b][:n]]),
            ("label", *[wp_tok.tokens[i] if i >= 0 else "-100" for i in labels[b][:n]]),
        ],
    )
    print()

big = np.random.default_rng(0).integers(5, wp_tok.vocab_size, size=(256, 128))
m, lab = mask_tokens(big, wp_tok.token_to_id("[MASK]"), wp_tok.vocab_size, wp_tok.special_ids)
chosen = lab != -100
print(f"RESULT mlm_chosen_percent = {100 * chosen.mean():.1f}")
print(f"RESULT mlm_masked_percent = {100 * (m[chosen] == wp_tok.token_to_id('[MASK]')).mean():.1f}")
print(
    f"on 32,768 tokens: {chosen.mean():.1%} chosen; of those "
    f"{(m[chosen] == wp_tok.token_to_id('[MASK]')).mean():.1%} masked, "
    f"{(m[chosen] == big[chosen]).mean():.1%} kept"
)

# %% [markdown]
# ## Saving tokenizers
#
# Every tokenizer saves to one JSON file (`tok.save(path)`, `numtrans.tokenizers.load(path)`);
# BPE also writes GPT-2's `vocab.json` + `merges.txt` (`save_pretrained`), which the Hugging
# Face `tokenizers` library reads and encodes to the same ids, and WordPiece writes BERT's
# `vocab.txt`.
