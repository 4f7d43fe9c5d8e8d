"""Look inside a translation model (``Seq2SeqTransformer`` + its two tokenizers).

A saved translator directory (``numtrans train-translation``, ``Translator.save``) is shown with
three attention stacks and its beam search:

    encoder   self-attention over the source             (L_enc, H, S, S)
    decoder   causal self-attention over the target      (L_dec, H, T, T)
    cross     decoder queries -> source keys             (L_dec, H, T, S)

for a teacher-forced pass over ``tgt = [<bos>, y1, ..., yn]`` (T = n + 1). Query row t is the
decoder position that predicts ``y_{t+1}`` (the last one predicts ``<eos>``), so rows are labelled
by the token they predict, as in ``Translator.attention``; keys are labelled by what is read there.

The attention modules normally run the fused kernel (``need_weights=False``). For this one pass
each is wrapped to return its per-head weights (the job a forward hook does in PyTorch); the
model's own forward runs otherwise unchanged, so the logits are the model's (the tests check).
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..autograd import no_grad
from ..translation.translate import Translator

STACKS = ("cross", "encoder", "decoder")


@contextlib.contextmanager
def recording(modules: list, out: list):
    """While active, every ``MultiheadAttention`` in ``modules`` appends its (B, H, Tq, Tk)
    weights to ``out`` (in call order). The instance attribute shadows the class's method."""

    def wrap(inner):
        def forward(*args, **kwargs):
            kwargs.update(need_weights=True, average_attn_weights=False)
            y, w = inner(*args, **kwargs)
            out.append(w.data)
            return y, w

        return forward

    for m in modules:
        m.forward = wrap(m.forward)
    try:
        yield out
    finally:
        for m in modules:
            del m.forward


def seq2seq_attention(model, src: np.ndarray, tgt: np.ndarray) -> dict:
    """src (S,), tgt (T,) ids -> {"encoder", "decoder", "cross": (L, H, Tq, Tk), "logits": (T, V)}."""
    enc = [layer.self_attn for layer in model.transformer.encoder.layers]
    dec_self = [layer.self_attn for layer in model.transformer.decoder.layers]
    dec_cross = [layer.multihead_attn for layer in model.transformer.decoder.layers]
    got = {"encoder": [], "decoder": [], "cross": []}
    with contextlib.ExitStack() as stack, no_grad():
        for name, modules in (("encoder", enc), ("decoder", dec_self), ("cross", dec_cross)):
            stack.enter_context(recording(modules, got[name]))
        logits, _ = model(np.asarray(src)[None], np.asarray(tgt)[None])
    out = {name: np.stack([w[0] for w in ws]) for name, ws in got.items()}
    out["logits"] = logits.data[0]
    return out


def token_dicts(tokenizer, ids) -> list[dict]:
    """``[{"id", "piece", "special"}]`` for the page's token boxes."""
    special = getattr(tokenizer, "special_ids", set())
    return [
        {"id": int(i), "piece": tokenizer.id_to_token(int(i)), "special": int(i) in special}
        for i in ids
    ]


class TranslatorProbe:
    """A translation model directory: source tokens, the three attention stacks, beam search."""

    family = "seq2seq"
    kind = "Seq2SeqTransformer"
    can_generate = can_classify = can_fill_mask = False
    views = ["tokens", "attention", "translate"]

    def __init__(self, directory: str, name: str):
        self._setup(Translator.load(directory), name)
        self.model.eval()
        self.directory = directory

    @classmethod
    def from_translator(cls, translator, name: str = "translator") -> TranslatorProbe:
        """A probe around a ``Translator`` already in memory (the notebook view)."""
        probe = cls.__new__(cls)
        probe._setup(translator, name)
        probe.directory = None
        return probe

    def _setup(self, translator, name):
        self.translator, self.name = translator, name
        self.model = translator.model
        self.tokenizer = translator.src_tok  # what /api/tokenize shows: the source side

    @property
    def config(self):
        return self.model.config

    @property
    def n_layer(self) -> int:  # the decoder's: cross-attention is the view shown first
        return self.config.num_decoder_layers

    @property
    def n_head(self) -> int:
        return self.config.nhead

    @property
    def max_tokens(self) -> int:
        return self.translator.settings["max_length"]

    def n_layers(self, stack: str) -> int:
        c = self.config
        return c.num_encoder_layers if stack == "encoder" else c.num_decoder_layers

    def describe(self) -> dict:
        c, s = self.config, self.translator.settings
        return {
            "name": self.name,
            "kind": self.kind,
            "family": self.family,
            "n_layer": c.num_decoder_layers,
            "n_encoder_layer": c.num_encoder_layers,
            "n_head": c.nhead,
            "max_tokens": self.max_tokens,
            "vocab_size": c.tgt_vocab_size,
            "src_vocab_size": c.src_vocab_size,
            "tokenizer": type(self.tokenizer).__name__,
            "languages": [s["src_lang"], s["tgt_lang"]],
            "beam_size": s["beam_size"],
            "views": self.views,
        }

    def encode(self, text: str) -> tuple[list[int], bool]:
        """Source ids as the translator reads them (BPE pieces + ``<eos>``) and whether the text
        was cut to ``max_length`` tokens (the translator keeps the first ones)."""
        if not text:
            raise ValueError("text is empty")
        n = len(self.tokenizer.encode(text))
        if n == 0:
            raise ValueError("text encodes to no tokens")
        return self.translator.encode_source(text), n > self.max_tokens - 1

    def tokens(self, ids) -> list[dict]:
        return token_dicts(self.tokenizer, ids)

    def target_tokens(self, ids) -> list[dict]:
        return token_dicts(self.translator.tgt_tok, ids)

    def search(self, text: str, **options):
        """Beam hypotheses (best first) from ``Translator.search`` (the decoder the CLI uses);
        ``options``: its keyword arguments (beam_size, n_best, alpha, max_new_tokens, ...)."""
        return self.translator.search([text], **options)[0]

    def hypotheses(self, hyps) -> list[dict]:
        """Beam hypotheses as JSON: text, target tokens, score (length-normalised), log P."""
        return [
            {
                "text": self.translator.decode(h.tokens),
                "tokens": self.target_tokens(h.tokens),
                "score": float(h.score),
                "log_prob": float(h.log_prob),
                "finished": bool(h.finished),
            }
            for h in hyps
        ]

    def stack_view(self, src_ids, target_ids, stack: str) -> dict:
        """One stack's (L, H, Tq, Tk) weights with its query and key tokens: queries are the
        source (encoder) or the decoder positions labelled by what they predict; keys are the
        source (encoder, cross) or the decoder's inputs ``<bos> y1 ... yn`` (decoder)."""
        if stack not in STACKS:
            raise ValueError(f"stack must be one of {list(STACKS)}, got {stack!r}")
        out = self.attention(src_ids, target_ids)
        src = self.tokens(src_ids)
        predicted = self.target_tokens(out["predicted"])
        queries, keys = {
            "cross": (predicted, src),
            "encoder": (src, src),
            "decoder": (predicted, self.target_tokens(out["target_inputs"])),
        }[stack]
        return {"query_tokens": queries, "key_tokens": keys, "weights": out[stack]}

    def attention(self, src_ids, target_ids) -> dict:
        """The three stacks for source ``src_ids`` and target ``target_ids`` (without <bos>)."""
        tr = self.translator
        tgt = [tr.bos_id] + list(target_ids)
        out = seq2seq_attention(self.model, np.asarray(src_ids), np.asarray(tgt))
        out["target_inputs"] = tgt
        out["predicted"] = list(target_ids) + [tr.eos_id]
        return out
