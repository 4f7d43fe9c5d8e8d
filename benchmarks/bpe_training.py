"""Byte-level BPE training speed: 1 MB of Tiny Shakespeare to 4,000 merges, on one core.

    python benchmarks/bpe_training.py [--merges 4000] [--repeats 3]

Rows, measured side by side in one run (medians of ``--repeats`` runs):

* ``numtrans`` - incremental pair counts (only the chunks holding the merged pair are
  revisited) and a lazy max-heap;
* ``naive recount`` - recount every pair of the corpus before each merge, timed over the first
  50 merges and extrapolated to ``--merges`` (what the incremental update saves);
* ``tokenizers`` - the Rust ``BpeTrainer`` of Hugging Face ``tokenizers`` on one thread, when
  installed (``RAYON_NUM_THREADS=1`` is set before it is imported).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one core for the Rust trainer too

from numtrans.data import load_corpus  # noqa: E402
from numtrans.tokenizers import ByteBPETokenizer  # noqa: E402
from numtrans.tokenizers.bpe_train import count_chunks  # noqa: E402
from numtrans.tokenizers.merging import merge_word  # noqa: E402


def time_numtrans(text: str, merges: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, merges learned)."""
    wall, cpu = time.perf_counter(), time.process_time()
    tok = ByteBPETokenizer.train(text, vocab_size=256 + merges)
    return time.perf_counter() - wall, time.process_time() - cpu, len(tok.merges)


def time_naive(text: str, merges: int, measured: int = 50) -> tuple[float, float]:
    """Seconds for ``merges`` merges when every pair is recounted each time (extrapolated)."""
    chunks = count_chunks(text)
    words = [list(c.encode("utf-8")) for c in chunks]
    freqs = list(chunks.values())
    wall, cpu = time.perf_counter(), time.process_time()
    for new_id in range(256, 256 + measured):
        counts: Counter = Counter()
        for w, f in zip(words, freqs):
            for pair in zip(w, w[1:]):
                counts[pair] += f
        (a, b), _ = counts.most_common(1)[0]
        words = [merge_word(w, a, b, new_id) for w in words]
    scale = merges / measured
    return (time.perf_counter() - wall) * scale, (time.process_time() - cpu) * scale


def time_tokenizers(text: str, merges: int) -> tuple[float, float] | None:
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    except ImportError:
        return None
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=256 + merges,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    tok.train_from_iterator([text], trainer)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--merges", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    text = load_corpus("tinyshakespeare")
    print(f"corpus: tinyshakespeare, {len(text.encode()):,} bytes; target {args.merges:,} merges")

    med = lambda runs, k: statistics.median(r[k] for r in runs)
    runs = [time_numtrans(text, args.merges) for _ in range(args.repeats)]
    rows = [("numtrans (incremental)", med(runs, 0), med(runs, 1), runs[0][2])]
    naive = time_naive(text, args.merges)
    rows.append(("naive recount (extrapolated)", *naive, args.merges))
    hf = [time_tokenizers(text, args.merges) for _ in range(args.repeats)]
    if hf[0] is not None:
        rows.append(("tokenizers (Rust, 1 thread)", med(hf, 0), med(hf, 1), args.merges))

    # Wall time suffers when other processes share the cores; CPU time of this process does not.
    print(f"\n| {'trainer':<30} | {'wall s':>8} | {'CPU s':>8} | {'merges':>7} |")
    print(f"|{'-' * 32}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    for name, wall, cpu, n in rows:
        print(f"| {name:<30} | {wall:8.2f} | {cpu:8.2f} | {n:7,} |")


if __name__ == "__main__":
    main()
