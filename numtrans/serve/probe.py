"""``Probe``: a loaded model and its tokenizer, with the explorer's questions as methods
(tokens, attention weights, next-token probabilities, generation steps, classes, masked tokens).

Supported: ``GPT`` (from ``numtrans pretrain``, a Hugging Face GPT-2 directory), ``BertModel`` /
``BertForMaskedLM`` / ``BertForSequenceClassification`` / ``GPTForSequenceClassification`` and
Hugging Face BERT directories such as all-MiniLM-L6-v2 (with their MLM head when the checkpoint
has one: then ``fill_mask`` predicts every ``[MASK]``). Translation directories get a
``TranslatorProbe`` (``seq2seq.py``); ``load_probe`` picks the right one. The attention weights
come from ``trace.py``. Every method runs under ``no_grad``; models are not modified.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..autograd import no_grad
from ..finetune.models import load_tokenizer, model_kind
from ..generation.sampling import sample_next
from ..models import BertForSequenceClassification, BertModel
from ..models.bert_heads import BertForMaskedLM
from ..models.gpt import GPT
from ..models.gpt_heads import GPTForSequenceClassification
from .seq2seq import TranslatorProbe, token_dicts
from .trace import _softmax, bert_attention, gpt_attention, next_token_distribution

GPT_KINDS = {
    "GPT": GPT,
    "hf-gpt2": GPT,
    "GPTForSequenceClassification": GPTForSequenceClassification,
}
BERT_KINDS = {
    "BertModel": BertModel,
    "hf-bert": BertModel,
    "BertForMaskedLM": BertForMaskedLM,
    "BertForSequenceClassification": BertForSequenceClassification,
}


def cache_bytes(cache) -> int:
    """Bytes of keys and values a ``KVCache`` holds: 2 * layers * heads * length * hs * itemsize."""
    total = 0
    for layer in cache.layers:
        k, v = layer.self_attn.keys_values()
        total += k.data.nbytes + v.data.nbytes
    return total


def default_name(directory) -> str:
    """A model's name when the user gives none: its directory's base name."""
    return os.path.basename(os.path.normpath(os.fspath(directory)))


def unique_names(model_dirs: list[str], names: list[str] | None = None) -> list[str]:
    """The models' names: the user's (``--name``), else each directory's base name, with
    ``-2``, ``-3``... added where two directories share one (e.g. two ``.../model``)."""
    if names:
        if len(names) != len(model_dirs):
            raise ValueError(
                f"got {len(names)} --name for {len(model_dirs)} --model: name every model or none"
            )
        for n in names:
            if not n or not n.strip():
                raise ValueError("a model name must not be empty")
        if len(set(names)) != len(names):
            raise ValueError(f"two models share a name: {names}")
        return list(names)
    out, seen = [], {}
    for d in model_dirs:
        base = default_name(d)
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


def load_probe(directory, name: str | None = None):
    """A ``Probe`` (GPT, BERT) or a ``TranslatorProbe`` for a saved model directory."""
    directory = os.fspath(directory)
    name = name or default_name(directory)
    if model_kind(directory) == TranslatorProbe.kind:
        return TranslatorProbe(directory, name)
    return Probe(directory, name)


def has_mlm_head(directory: str) -> bool:
    """True when a Hugging Face BERT checkpoint stores the masked-LM head (``cls.predictions``)."""
    from safetensors import safe_open

    path = os.path.join(directory, "model.safetensors")
    if not os.path.isfile(path):
        return False
    with safe_open(path, "np") as f:
        return any(k.startswith("cls.predictions.") for k in f.keys())


class Probe:
    """A model directory's model and tokenizer, with the explorer's questions as methods."""

    def __init__(self, directory: str, name: str | None = None):
        directory = os.fspath(directory)
        kind = model_kind(directory)
        if kind in GPT_KINDS:
            family, cls = "gpt", GPT_KINDS[kind]
        elif kind in BERT_KINDS:
            family, cls = "bert", BERT_KINDS[kind]
            if kind == "hf-bert" and has_mlm_head(directory):
                cls = BertForMaskedLM  # e.g. bert-base-uncased: keep its MLM head
        else:
            raise ValueError(f"{directory!r} holds a {kind}, which the explorer cannot show")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. an MLM head's tensors left out of BertModel
            model = cls.from_pretrained(directory)
        self._setup(
            model.eval(), load_tokenizer(directory), name or default_name(directory), family
        )
        self.kind, self.directory = kind, directory

    @classmethod
    def from_model(cls, model, tokenizer, name: str = "model") -> Probe:
        """A Probe around a model and tokenizer already in memory (the notebook views). The
        model's train/eval mode is the caller's (``viz_notebook`` switches dropout off)."""
        probe = cls.__new__(cls)
        family = "bert" if hasattr(model.config, "num_hidden_layers") else "gpt"
        probe._setup(model, tokenizer, name, family)
        probe.kind, probe.directory = type(model).__name__, None
        return probe

    def _setup(self, model, tokenizer, name, family):
        self.model, self.tokenizer, self.name, self.family = model, tokenizer, name, family

    # ------------------------------------------------------------------ facts
    @property
    def config(self):
        return self.model.config

    @property
    def bert(self):
        return self.model if isinstance(self.model, BertModel) else self.model.bert

    @property
    def n_layer(self) -> int:
        c = self.config
        return c.n_layer if self.family == "gpt" else c.num_hidden_layers

    @property
    def n_head(self) -> int:
        c = self.config
        return c.n_head if self.family == "gpt" else c.num_attention_heads

    @property
    def max_tokens(self) -> int:
        c = self.config
        return c.block_size if self.family == "gpt" else c.max_position_embeddings

    @property
    def can_generate(self) -> bool:
        return isinstance(self.model, GPT)

    @property
    def can_classify(self) -> bool:
        return isinstance(self.model, (BertForSequenceClassification, GPTForSequenceClassification))

    @property
    def can_fill_mask(self) -> bool:
        return isinstance(self.model, BertForMaskedLM)

    @property
    def views(self) -> list[str]:
        return (
            ["tokens", "attention"]
            + (["next", "generate"] if self.can_generate else [])
            + (["classify"] if self.can_classify else [])
            + (["fill-mask"] if self.can_fill_mask else [])
        )

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "family": self.family,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "max_tokens": self.max_tokens,
            "vocab_size": self.config.vocab_size,
            "tokenizer": type(self.tokenizer).__name__,
            "views": self.views,
        }

    # ------------------------------------------------------------------ questions
    def encode(self, text: str) -> tuple[list[int], bool]:
        """Token ids of ``text`` cut to the model's ``max_tokens``; returns (ids, truncated).

        A GPT keeps the LAST tokens (the context that predicts what comes next); a BERT keeps
        the first ones and its final [SEP]."""
        if not text:
            raise ValueError("text is empty")
        ids = (
            self._encode_bert(text) if self.family == "bert" else list(self.tokenizer.encode(text))
        )
        if not ids:
            raise ValueError("text encodes to no tokens")
        n = self.max_tokens
        if len(ids) <= n:
            return ids, False
        if self.family == "gpt":
            return ids[-n:], True
        return ids[: n - 1] + ids[-1:], True

    def _encode_bert(self, text: str) -> list[int]:
        """``[CLS] text [SEP]`` where each literal ``[MASK]`` in the text is the mask token
        (the WordPiece pre-tokenizer would split it into ``[``, ``mask``, ``]``)."""
        tok = self.tokenizer
        mask = getattr(tok, "mask_token", None)
        if mask is None or mask not in text:
            return list(tok.encode(text))
        parts = [tok.encode(p, add_special_tokens=False) for p in text.split(mask)]
        body = parts[0]
        for p in parts[1:]:
            body = body + [tok.token_to_id(mask)] + p
        return [tok.token_to_id(tok.cls_token)] + body + [tok.token_to_id(tok.sep_token)]

    def tokens(self, ids: list[int]) -> list[dict]:
        return token_dicts(self.tokenizer, ids)

    def attention(self, ids: list[int]) -> np.ndarray:
        """(L, H, T, T) attention probabilities of every layer and head."""
        ids = np.asarray(ids, dtype=np.int64)
        with no_grad():
            if self.family == "gpt":
                return gpt_attention(self.model, ids)[0]
            return bert_attention(self.bert, ids)[0]

    def next_logits(self, ids: list[int]) -> np.ndarray:
        """(V,) logits for the token after ``ids`` (a GPT language model only)."""
        if not self.can_generate:
            raise ValueError(f"model {self.name!r} ({self.kind}) does not predict next tokens")
        with no_grad():
            logits, _ = self.model(np.asarray([ids[-self.max_tokens :]], dtype=np.int64))
        return logits.data[0, -1].astype(np.float64)

    def fill_mask(self, ids: list[int], k: int = 5) -> list[dict]:
        """For each ``[MASK]`` position: the top-k tokens of the MLM head's softmax,
        ``p = softmax(logits[t])`` over the vocabulary."""
        if not self.can_fill_mask:
            raise ValueError(f"model {self.name!r} ({self.kind}) has no masked-LM head")
        mask_id = self.tokenizer.token_to_id(self.tokenizer.mask_token)
        where = [t for t, i in enumerate(ids) if i == mask_id]
        if not where:
            raise ValueError(f"text has no {self.tokenizer.mask_token} token to fill")
        with no_grad():
            logits = self.model(np.asarray([ids], dtype=np.int64)).logits.data[0]
        out = []
        for t in where:
            p = _softmax(logits[t].astype(np.float64))
            top = np.argsort(-p, kind="stable")[:k]
            out.append({"index": t, "top": [
                {"id": int(i), "piece": self.tokenizer.id_to_token(int(i)), "prob": float(p[i])}
                for i in top
            ]})  # fmt: skip
        return out

    def generate_steps(self, ids: list[int], steps: int, opts: dict, seed: int):
        """``steps`` sampled tokens after ``ids``, decoded as ``generate`` does, with a KV cache.

        The first step runs the whole context and fills the cache (the "prefill"); every later
        step feeds only the newest token and attends over the cached keys/values. A context
        past ``block_size`` is cropped to its last ``block_size`` tokens and the cache refilled.
        Returns (one dict per step, the final context); ``kv_cache_length`` is the number of
        positions the cache held when the step's token was predicted, read off the cache."""
        if not self.can_generate:
            raise ValueError(f"model {self.name!r} ({self.kind}) does not predict next tokens")
        rng, context, out, block = np.random.default_rng(seed), list(ids), [], self.max_tokens
        cache = None
        with no_grad():
            for _ in range(steps):
                prefill = cache is None or len(context) > block
                if prefill:
                    cache = self.model.make_kv_cache()
                    feed = context[-block:]
                else:
                    feed = context[-1:]
                logits, _ = self.model(np.asarray([feed], dtype=np.int64), kv_cache=cache)
                z = logits.data[0, -1].astype(np.float64)
                p = next_token_distribution(z, **opts)
                t, k, top_p = opts["temperature"], opts["top_k"], opts["top_p"]
                nxt = int(sample_next(z[None], t, k, top_p, rng)[0])
                out.append({
                    "id": nxt, "piece": self.tokenizer.id_to_token(nxt), "prob": float(p[nxt]),
                    "prefill": prefill, "fed_tokens": len(feed),
                    "kv_cache_length": cache.length, "kv_cache_bytes": cache_bytes(cache),
                })  # fmt: skip
                context.append(nxt)
        return out, context

    def classify(self, ids: list[int]) -> dict:
        """A sequence classifier's answer: ``{"labels", "probs"}`` (softmax of the logits;
        class names from the directory's ``labels.json``, else ``class i``), or
        ``{"value"}`` for a regression head (its one output, no softmax)."""
        if not self.can_classify:
            raise ValueError(f"model {self.name!r} ({self.kind}) has no classifier head")
        with no_grad():
            out = self.model(np.asarray([ids], dtype=np.int64))
        logits = out.logits.data[0].astype(np.float64)
        if self.model.is_regression:
            return {"value": float(logits[0])}
        names = self.label_names() or [f"class {i}" for i in range(len(logits))]
        return {"labels": names, "probs": _softmax(logits).tolist()}

    def label_names(self) -> list[str] | None:
        """Class names saved by ``numtrans finetune`` (``labels.json``), if any."""
        from ..finetune.data import LabelMap

        if self.directory is None:
            return None
        try:
            return LabelMap.load(self.directory)[0].names
        except FileNotFoundError:
            return None
