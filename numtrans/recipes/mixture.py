"""A decoder-only base worth tuning: a byte-level BPE GPT on a cleaned English + Chinese mixture.

    bundled corpora -> documents (a Tatoeba sentence, a review, a Shakespeare speech, a paragraph
        of the Four Books) -> a seeded train / validation split by document
    -> validation: cleaned (numtrans.data.cleaning.clean), the same for every run
    -> training: cleaned too when cfg.clean (exact and MinHash near-duplicates, length,
        character class, script), then, in every run, the documents that near-duplicate a
        validation one are dropped (decontamination: the loss must not reward memory)
    -> a byte-level BPE learned on the training documents, "<|endoftext|>" after every document
    -> GPT on random (B, T) windows of the token stream (numtrans.training.Trainer)
    -> the loss over the whole validation stream, in nats/token and in bits per UTF-8 byte

Only training splits enter: Tatoeba's ``split_pairs(seed=0)`` train part, the sentiment
``split(0.1, seed=0)`` train part (what ``numtrans sft`` and ``benchmarks/instruct.py`` hold out
stays out), all of Tiny Shakespeare and the Four Books. Bits per byte, nats / (ln 2 x bytes), do
not depend on the vocabulary, so runs with different tokenizers (cleaned or not) compare
directly; a separator counts as one byte. ``document_mask=True`` also keeps every token's
attention inside its own document (``GPT.forward(document_ids=)``), positions restarting there.
The directory it writes (``config.json``, ``model.safetensors``, ``tokenizer.json``,
``mixture.json``) is what ``numtrans sft --model DIR`` starts from.

Measured, ``numtrans pretrain-mixture --compare --seed=S`` (the ``quick`` preset: 4 layers x 128,
RoPE, 4,096-token BPE, 200 steps x 16 x 128 tokens, about 0.4 epoch; 175-261 s of training a
run on 2 Xeon cores (AVX-512) shared with other jobs, load 5-7). Cleaning the 62,415 training
documents removes 4,292 exact and 4,345 near duplicates (Jaccard 0.8), 379 by length, 25 by
character class, 0 by script (seed 0); decontamination then drops 339 (cleaned) or 1,888 (raw)
training documents that near-duplicate one of the 1,231 validation documents:

| seed | cleaned: bits/byte (nats/token) | raw: bits/byte (nats/token) |
|---:|---:|---:|
| 0 | 2.3844 (4.987) | 2.4064 (5.028) |
| 1 | 2.3568 (4.990) | 2.3485 (4.966) |
| 2 | 2.3995 (5.069) | 2.3789 (5.025) |
| mean | 2.380 | 2.378 |

At this budget cleaning makes no difference beyond the seed-to-seed spread (0.02): in less
than one pass a duplicate is one more sample of the same text, not something memorised. What
does matter is the decontamination, which both runs get: without it the raw run would train on
1,888 near-duplicates of its validation documents.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass

import numpy as np

from .. import validation as valid
from ..validation import check_output_dir, check_settings

EOT = "<|endoftext|>"
SOURCES = ("tatoeba_en", "tatoeba_zh", "sentiment", "shakespeare", "sishu")


@dataclass
class MixtureConfig:
    sources: tuple = SOURCES
    max_docs_per_source: int | None = None  # a seeded subset of each source (tests, quick looks)
    val_fraction: float = 0.02
    # cleaning (numtrans.data.cleaning.clean)
    clean: bool = True
    min_chars: int = 5
    max_chars: int = 4000
    min_alpha: float = 0.5
    jaccard: float = 0.8  # near-duplicate threshold, also for decontamination
    languages: tuple = ("latin", "han")
    # tokenizer and model
    vocab_size: int = 4096
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 128
    pos: str = "rope"
    dropout: float = 0.0
    document_mask: bool = False
    # optimisation (the Trainer's names)
    batch_size: int = 16
    max_steps: int = 200
    learning_rate: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 100
    eval_batches: int = 8
    log_interval: int = 25
    seed: int = 0
    progress: bool = False
    out_dir: str = "runs/mixture"


PRESETS = {
    # under 5 minutes of training on 2 cores shared with other jobs (load ~6): the
    # with/without-cleaning comparison; 200 steps x 2,048 tokens, about 0.4 of an epoch
    "quick": {},
    # sized (not yet run) for about 30 minutes on 2 unloaded cores: 3.4x the compute per token
    # of "quick", 6x the steps
    "base": {
        "n_layer": 6,
        "n_head": 6,
        "n_embd": 192,
        "max_steps": 1200,
        "warmup_steps": 100,
        "eval_interval": 200,
        "out_dir": "runs/mixture-base",
    },  # fmt: skip
}


def make_config(preset: str = "quick", overrides: dict | None = None) -> MixtureConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    values = {**PRESETS[preset], **(overrides or {})}
    known = {f.name for f in dataclasses.fields(MixtureConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known)}")
    for key in ("sources", "languages"):  # "--sources=sishu" on the command line is one name
        if isinstance(values.get(key), str):
            values[key] = (values[key],)
    cfg = MixtureConfig(**values)
    bad = sorted(set(cfg.sources) - set(SOURCES))
    if bad or not cfg.sources:
        raise ValueError(f"unknown source(s) {bad or '(none)'}; choose from {list(SOURCES)}")
    if not 0 < cfg.val_fraction < 0.5:
        raise ValueError(f"val_fraction must be in (0, 0.5), got {cfg.val_fraction}")
    check_settings(cfg, _RULES)
    if cfg.n_embd % cfg.n_head:
        raise ValueError(f"n_embd={cfg.n_embd} must be divisible by n_head={cfg.n_head}")
    check_output_dir(cfg.out_dir)  # before minutes of work, not after
    return cfg


_RULES = {  # numtrans/validation.py's rules: a bad value is one line naming the field
    **{k: valid.POSITIVE_INT for k in ("vocab_size", "n_layer", "n_head", "n_embd", "block_size",
                                   "batch_size", "max_steps", "eval_interval", "eval_batches",
                                   "log_interval", "min_chars", "max_chars")},
    **{k: valid.POSITIVE_FLOAT for k in ("learning_rate",)},
    **{k: valid.NONNEG_FLOAT for k in ("min_lr", "weight_decay", "grad_clip")},
    **{k: valid.BOOL for k in ("clean", "document_mask", "progress")},
    "min_alpha": ((int, float), lambda x: 0 <= x <= 1, "a number in [0, 1]"),
    "jaccard": valid.FRACTION, "dropout": valid.PROBABILITY, "warmup_steps": valid.NONNEG_INT,
    "seed": valid.ANY_INT, "pos": valid.one_of("learned", "rope"), "out_dir": valid.TEXT,
    "max_docs_per_source": valid.optional(valid.POSITIVE_INT),
}  # fmt: skip


def source_documents(name: str) -> list[str]:
    """The documents of one source, training splits only (see the module docstring)."""
    from ..data.corpus import load_corpus

    if name in ("tatoeba_en", "tatoeba_zh"):
        from ..translation.data import split_pairs

        train, _, _ = split_pairs(load_corpus("tatoeba_cmn_eng"), seed=0)
        return [pair[0 if name == "tatoeba_en" else 1] for pair in train]
    if name == "sentiment":
        from ..finetune.data import read_labeled

        return list(read_labeled("uci_sentiment").split(0.1, 0)[0].texts)
    if name == "shakespeare":  # one speech (speaker line + lines) a document
        return [p for p in load_corpus("tinyshakespeare").split("\n\n") if p.strip()]
    return [line for line in load_corpus("sishu_zh").split("\n") if line.strip()]


def prepare_documents(cfg: MixtureConfig, say=print):
    """(train docs, val docs, report): the split, the cleaning and the decontamination."""
    from ..data.cleaning import clean, near_duplicates_of

    rng = np.random.default_rng(cfg.seed)
    docs, counts = [], {}
    for name in cfg.sources:
        found = source_documents(name)
        if cfg.max_docs_per_source is not None:
            found = [
                found[i] for i in sorted(rng.permutation(len(found))[: cfg.max_docs_per_source])
            ]
        counts[name] = len(found)
        docs += found
    order = rng.permutation(len(docs))  # the split is by document, seeded, before any cleaning
    n_val = max(1, int(round(len(docs) * cfg.val_fraction)))
    val_raw, train = [docs[i] for i in order[:n_val]], [docs[i] for i in order[n_val:]]
    options = dict(min_chars=cfg.min_chars, max_chars=cfg.max_chars, min_alpha=cfg.min_alpha,
                   language=cfg.languages, jaccard_threshold=cfg.jaccard)  # fmt: skip
    val, val_report = clean(val_raw, **options)
    train_report = None
    if cfg.clean:
        train, train_report = clean(train, **options)
        say(f"cleaning the training documents: {_removed(train_report)}")
    leaked = near_duplicates_of(train, val, cfg.jaccard)
    train = [d for i, d in enumerate(train) if i not in leaked]
    say(f"decontamination: {len(leaked)} training documents near-duplicate a validation one")
    report = {"documents": counts, "val_raw": len(val_raw), "val_cleaning": val_report,
              "train_cleaning": train_report, "decontaminated": len(leaked),
              "train": len(train), "val": len(val)}  # fmt: skip
    return train, val, report


def _removed(report: dict) -> str:
    steps = [k for k in report if k not in ("input", "kept")]
    return (f"{report['input']:,} in, " + ", ".join(f"{k} -{report[k]:,}" for k in steps)
            + f", {report['kept']:,} kept")  # fmt: skip


def token_stream(docs, tokenizer) -> np.ndarray:
    """(N,) int64: each document's ids, then the separator."""
    eot = tokenizer.get_vocab()[EOT]
    ids = []
    for d in docs:
        ids.extend(tokenizer.encode(d, allowed_special=()))  # a literal separator stays text
        ids.append(eot)
    return np.asarray(ids, np.int64)


def document_ids(x: np.ndarray, eot: int) -> np.ndarray:
    """(B, T) ids of the document each token is in: the separators seen before it, so a
    separator still belongs to the document it ends."""
    is_eot = x == eot
    return np.cumsum(is_eot, axis=1) - is_eot


def make_batcher(train_ids, val_ids, cfg: MixtureConfig, eot: int):
    """``get_batch(split, rng)`` -> (x, y) or, with ``document_mask``, (x, y, document ids)."""
    streams = {"train": train_ids, "val": val_ids}
    for split, ids in streams.items():
        if len(ids) <= cfg.block_size:
            raise ValueError(f"the {split} stream has {len(ids)} tokens, too few for "
                             f"block_size {cfg.block_size}: use more documents")  # fmt: skip

    def get_batch(split, rng):
        ids = streams[split]
        starts = rng.integers(0, len(ids) - cfg.block_size, size=cfg.batch_size)
        window = ids[starts[:, None] + np.arange(cfg.block_size + 1)]  # (B, T + 1)
        x, y = window[:, :-1], window[:, 1:]
        return (x, y, document_ids(x, eot)) if cfg.document_mask else (x, y)

    return get_batch


def lm_loss(model, batch):
    """The Trainer's loss: GPT's mean next-token cross-entropy, document-masked if asked."""
    return model(batch[0], batch[1], document_ids=batch[2] if len(batch) > 2 else None)[1]


def stream_loss(model, ids, tokenizer, cfg: MixtureConfig) -> dict:
    """Loss over the whole stream in non-overlapping windows of ``block_size``:
    nats/token = sum of -log p / tokens;  bits/byte = sum of -log p / (ln 2 x target bytes)."""
    from ..autograd import no_grad
    from ..functional.losses import cross_entropy

    eot, T = tokenizer.get_vocab()[EOT], cfg.block_size
    n = (len(ids) - 1) // T
    x, y = ids[: n * T].reshape(n, T), ids[1 : n * T + 1].reshape(n, T)
    rest = len(ids) - 1 - n * T  # the last, shorter window
    windows = [(x[i : i + 32], y[i : i + 32]) for i in range(0, n, 32)]
    if rest:
        windows.append((ids[n * T : -1][None], ids[n * T + 1 :][None]))
    nats, tokens = 0.0, 0
    model.eval()
    with no_grad():
        for xb, yb in windows:
            doc = document_ids(xb, eot) if cfg.document_mask else None
            logits, _ = model(xb, document_ids=doc)
            nats += cross_entropy(
                logits.reshape(yb.size, -1), yb.reshape(-1), reduction="sum"
            ).item()
            tokens += yb.size
    width = {i: len(tokenizer.token_bytes(i)) for i in np.unique(ids[1:]).tolist()}
    width[eot] = 1
    n_bytes = sum(width[i] for i in ids[1:].tolist())
    return {"nats_per_token": nats / tokens, "bits_per_byte": nats / (math.log(2) * n_bytes),
            "tokens": tokens, "bytes": n_bytes}  # fmt: skip


def run(cfg: MixtureConfig, say=print) -> dict:
    """Prepare, tokenise, train, measure, save; returns the record written to ``mixture.json``."""
    import time

    from .. import manual_seed
    from ..io import atomic_write_text
    from ..models.gpt import GPT, GPTConfig
    from ..optim import AdamW, WarmupCosineLR, param_groups_for_weight_decay
    from ..tokenizers.bpe import ByteBPETokenizer
    from ..training.trainer import TrainConfig, Trainer

    t0 = time.perf_counter()
    train_docs, val_docs, report = prepare_documents(cfg, say)
    tokenizer = ByteBPETokenizer.train(train_docs, cfg.vocab_size, special_tokens=[EOT])
    train_ids, val_ids = token_stream(train_docs, tokenizer), token_stream(val_docs, tokenizer)
    prep = time.perf_counter() - t0
    say(f"data: {len(train_docs):,} train / {len(val_docs):,} val documents, "
        f"{len(train_ids):,} / {len(val_ids):,} tokens, vocabulary {tokenizer.vocab_size} "
        f"({prep:.0f} s)")  # fmt: skip
    manual_seed(cfg.seed)
    model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=tokenizer.vocab_size,
                          n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                          dropout=cfg.dropout, pos=cfg.pos))  # fmt: skip
    groups = param_groups_for_weight_decay(model.named_parameters(), cfg.weight_decay)
    optimizer = AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.99))
    scheduler = WarmupCosineLR(optimizer, warmup_steps=min(cfg.warmup_steps, cfg.max_steps - 1),
                               total_steps=cfg.max_steps, min_lr=cfg.min_lr)  # fmt: skip
    eot = tokenizer.get_vocab()[EOT]
    trainer = Trainer(model, optimizer, make_batcher(train_ids, val_ids, cfg, eot),
                      TrainConfig.from_job(cfg), scheduler=scheduler, loss_fn=lm_loss)  # fmt: skip
    say(f"model: GPT {cfg.n_layer} layers x {cfg.n_embd}, block {cfg.block_size}: "
        f"{model.num_params():,} parameters")  # fmt: skip
    t1 = time.perf_counter()
    history = trainer.train()
    train_seconds = time.perf_counter() - t1
    val = stream_loss(model, val_ids, tokenizer, cfg)
    say(f"validation ({val['tokens']:,} tokens): {val['nats_per_token']:.4f} nats/token, "
        f"{val['bits_per_byte']:.4f} bits/byte; {train_seconds:.0f} s of training")  # fmt: skip
    record = {"config": dataclasses.asdict(cfg), "data": report, "train_tokens": len(train_ids),
              "vocab_size": tokenizer.vocab_size, "prepare_seconds": prep,
              "train_seconds": train_seconds, "val": val, "history": history}  # fmt: skip
    os.makedirs(cfg.out_dir, exist_ok=True)
    model.save_pretrained(cfg.out_dir)
    tokenizer.save(os.path.join(cfg.out_dir, "tokenizer.json"))
    atomic_write_text(os.path.join(cfg.out_dir, "mixture.json"), json.dumps(record, indent=1))
    return record


def compare(cfg: MixtureConfig, say=print) -> dict:
    """The same model and budget trained with and without cleaning; the same cleaned validation
    set. Returns {"clean": record, "raw": record}; each run saved under ``out_dir/{clean,raw}``."""
    out = {}
    for name, flag in (("clean", True), ("raw", False)):
        say(f"---- {'with' if flag else 'without'} cleaning ----")
        run_cfg = dataclasses.replace(cfg, clean=flag, out_dir=os.path.join(cfg.out_dir, name))
        out[name] = run(run_cfg, say)
    c, r = out["clean"]["val"], out["raw"]["val"]
    say(f"validation bits/byte: cleaned {c['bits_per_byte']:.4f}, raw {r['bits_per_byte']:.4f}"
        f" (nats/token {c['nats_per_token']:.4f} vs {r['nats_per_token']:.4f}, own tokenizers)")  # fmt: skip
    return out
