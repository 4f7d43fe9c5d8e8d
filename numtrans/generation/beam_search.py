"""Greedy and beam-search decoding for encoder-decoder models (``Seq2SeqTransformer``).

Both decoders run the encoder once and then extend the translations one token at a time::

    memory = model.encode(src, src_pad)                      (B, S, d)     once per batch
    cache  = model.make_kv_cache()
    step 0:  logits = model.decode([[BOS]], memory, kv_cache=cache)    fills the cross-attention
                                                                        keys/values of the memory
    step t:  logits = model.decode(newest tokens (R, 1), memory, kv_cache=cache)

Greedy decoding takes the most probable token at every step. It is fast, but a token that looks
best now can lead to a worse sentence. **Beam search** keeps the ``K`` best partial translations
("hypotheses") of each sentence. At every step each of them is extended by every token, the
``K * V`` continuations are scored by their total log-probability

    log P(y_1..y_t | x) = sum_i log p(y_i | y_<i, x)

and the best survive. The KV cache rows then follow their hypotheses (``KVCache.reorder``).

Details, as in fairseq's ``SequenceGenerator``:

* the top ``2K`` continuations are taken; those ending in ``<eos>`` *and* ranked among the top
  ``K`` are finished hypotheses, the best ``K`` others are the next beam (each parent contributes
  at most one ``<eos>``, so ``K`` non-finishing continuations always remain);
* a sentence is done once it has ``K`` finished hypotheses; at ``max_new_tokens`` the unfinished
  ones are finished as they are (``Hypothesis.finished`` is then False);
* with ``K = 1`` the only candidate kept is the argmax, so beam search *is* greedy decoding;
* step 0 runs one row per sentence (all ``K`` beams would start from the same ``<bos>``, and
  duplicate beams would waste the beam), then the cache is expanded to ``K`` rows per sentence.

**Length penalty.** Every log-probability is negative, so the raw total favours short output.
Finished hypotheses are ranked by GNMT's normalised score (Wu et al., 2016, eq. 14)::

    score = log P(y | x) / lp(y),       lp(y) = ((5 + |y|) / 6) ** alpha

where ``|y|`` counts the generated tokens including ``<eos>``; ``alpha = 0`` ranks by raw
log-probability, larger ``alpha`` favours longer translations (GNMT used 0.6 to 0.7). (Hugging
Face's ``length_penalty`` divides by ``|y| ** alpha`` instead.) ``<pad>`` and ``<bos>`` are never
generated: their logits are set to -inf.

**Repetition control** (``logits_process.py``): with ``no_repeat_ngram_size`` or
``repetition_penalty`` set, each row's raw logits are changed from *its own* history (``<bos>``
and the hypothesis so far) before the log-softmax, so a beam never scores a token that would
repeat one of its n-grams; the reported ``log_prob`` is then that of the changed distribution.
(Hugging Face's beam search applies its processors after the log-softmax; for the n-gram ban the
ranking is the same, the penalty differs by the renormalisation.)

Both functions return, for each sentence, a list of :class:`Hypothesis` (best first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd import no_grad
from .logits_process import (
    apply_repetition_controls,
    check_no_repeat_ngram_size,
    check_repetition_penalty,
)


@dataclass
class Hypothesis:
    """One translation: token ids (without ``<bos>``/``<eos>``) and its scores."""

    tokens: list[int]
    log_prob: float  # log P(y | x), <eos> included when finished
    score: float  # log_prob / lp(length): what beams are ranked by
    finished: bool = True  # False: stopped at max_new_tokens without <eos>


def length_penalty(length: int | np.ndarray, alpha: float) -> float | np.ndarray:
    """GNMT's lp = ((5 + length) / 6) ** alpha; 1 for alpha = 0."""
    return ((5.0 + np.asarray(length, dtype=np.float64)) / 6.0) ** alpha


class _Stepper:
    """Next-token log-probabilities for rows of partial translations.

    Holds the encoder output and (with ``use_cache``) the decoder's KV cache; ``select(rows)``
    keeps the given rows (beam reordering, dropping finished sentences). Without the cache every
    step re-decodes the whole prefix: slower, same numbers (tested)."""

    def __init__(self, model, memory, memory_pad, use_cache: bool, banned: list[int], repeat):
        self.model, self.memory, self.memory_pad = model, memory, memory_pad
        self.cache = model.make_kv_cache() if use_cache else None
        self.banned = banned
        self.repeat = repeat  # (no_repeat_ngram_size, repetition_penalty)

    def log_probs(self, tokens: np.ndarray) -> np.ndarray:
        """tokens (R, t) -> log p(next | prefix, source), (R, V) float64."""
        if self.cache is not None:
            fed = self.cache.length  # the cache already holds tokens[:, :fed]
            logits = self.model.decode(
                tokens[:, fed:], self.memory, self.memory_pad, kv_cache=self.cache
            )
        else:
            no_pad = np.zeros(tokens.shape, dtype=bool)
            logits = self.model.decode(tokens, self.memory, self.memory_pad, no_pad)
        z = logits.data[:, -1, :].astype(np.float64)
        z = apply_repetition_controls(z, tokens, *self.repeat)  # each row: its own history
        z[:, self.banned] = -np.inf
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    def select(self, rows: np.ndarray) -> None:
        self.memory = self.memory[rows]
        self.memory_pad = self.memory_pad[rows]
        if self.cache is not None:
            self.cache.reorder(rows)


def _prepare(model, src, src_padding_mask, max_new_tokens, bos_id, eos_id, ngram, penalty):
    repeat = (check_no_repeat_ngram_size(ngram), check_repetition_penalty(penalty))
    src = np.asarray(getattr(src, "data", src))
    if src.ndim == 1:
        src = src[None, :]
    if src.ndim != 2 or src.shape[1] == 0 or not np.issubdtype(src.dtype, np.integer):
        raise ValueError(f"src must be (B, S) integer token ids, got {src.shape} {src.dtype}")
    cfg = model.config
    for name, i in (("bos_id", bos_id), ("eos_id", eos_id)):
        if not 0 <= i < cfg.tgt_vocab_size:
            raise ValueError(
                f"{name}={i} is outside the target vocabulary [0, {cfg.tgt_vocab_size})"
            )
    pad = src == cfg.pad_idx if src_padding_mask is None else np.asarray(src_padding_mask, bool)
    if pad.shape != src.shape:
        raise ValueError(f"src_padding_mask shape {pad.shape} != src shape {src.shape}")
    if max_new_tokens is None:
        max_new_tokens = int(1.5 * src.shape[1]) + 10
    max_new_tokens = min(max_new_tokens, cfg.max_len - 1)  # positions 0..max_new_tokens
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    banned = sorted({cfg.pad_idx, bos_id} - {eos_id})
    return src, pad, max_new_tokens, banned, repeat


def greedy_search(
    model,
    src,
    bos_id: int,
    eos_id: int,
    src_padding_mask=None,
    max_new_tokens: int | None = None,
    alpha: float = 0.0,
    use_cache: bool = True,
    no_repeat_ngram_size: int = 0,
    repetition_penalty: float = 1.0,
) -> list[list[Hypothesis]]:
    """The most probable token at every step. src (B, S) ids -> B lists of one Hypothesis.

    ``src_padding_mask`` (B, S): True = padding (default ``src == pad_idx``).
    ``max_new_tokens`` default: 1.5 S + 10 (capped by the positional table).
    ``alpha`` only sets ``Hypothesis.score`` (for comparison with beam search).
    ``no_repeat_ngram_size``, ``repetition_penalty``: repetition control (module docstring)."""
    src, pad, max_new, banned, repeat = _prepare(
        model, src, src_padding_mask, max_new_tokens, bos_id, eos_id,
        no_repeat_ngram_size, repetition_penalty,
    )  # fmt: skip
    was_training = model.training
    model.eval()
    B = src.shape[0]
    with no_grad():
        stepper = _Stepper(model, model.encode(src, pad), pad, use_cache, banned, repeat)
        tokens = np.full((B, 1), bos_id, dtype=np.int64)
        log_prob = np.zeros(B)
        done = np.zeros(B, dtype=bool)
        for _ in range(max_new):
            logp = stepper.log_probs(tokens)
            nxt = np.where(done, eos_id, logp.argmax(axis=-1))
            log_prob += np.where(done, 0.0, logp[np.arange(B), nxt])
            done |= nxt == eos_id
            tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
            if done.all():
                break
    model.train(was_training)
    out = []
    for b in range(B):
        row = tokens[b, 1:].tolist()
        finished = eos_id in row
        row = row[: row.index(eos_id)] if finished else row
        length = len(row) + finished
        score = log_prob[b] / length_penalty(length, alpha)
        out.append([Hypothesis(row, float(log_prob[b]), float(score), finished)])
    return out


def beam_search(
    model,
    src,
    bos_id: int,
    eos_id: int,
    beam_size: int = 4,
    alpha: float = 0.6,
    n_best: int = 1,
    src_padding_mask=None,
    max_new_tokens: int | None = None,
    use_cache: bool = True,
    no_repeat_ngram_size: int = 0,
    repetition_penalty: float = 1.0,
) -> list[list[Hypothesis]]:
    """Beam search. src (B, S) ids -> B lists of the ``n_best`` hypotheses, best score first.

    ``alpha``: the GNMT length-penalty exponent (module docstring); ``n_best <= beam_size``.
    ``no_repeat_ngram_size``, ``repetition_penalty``: repetition control per hypothesis."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best must be in [1, beam_size={beam_size}], got {n_best}")
    src, pad, max_new, banned, repeat = _prepare(
        model, src, src_padding_mask, max_new_tokens, bos_id, eos_id,
        no_repeat_ngram_size, repetition_penalty,
    )  # fmt: skip
    V = model.config.tgt_vocab_size
    if 2 * beam_size > V - len(banned):
        raise ValueError(f"beam_size={beam_size} is too large for {V} target tokens")
    K = beam_size
    was_training = model.training
    model.eval()
    B = src.shape[0]
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    with no_grad():
        stepper = _Stepper(model, model.encode(src, pad), pad, use_cache, banned, repeat)
        active = np.arange(B)  # sentences still decoding, in row-block order
        tokens = np.full((B, 1), bos_id, dtype=np.int64)  # (rows, t): k_cur rows per sentence
        beam_logp = np.zeros((B, 1))  # (active sentences, k_cur) running log P
        for t in range(max_new):
            k_cur = beam_logp.shape[1]  # 1 at step 0, K after
            logp = stepper.log_probs(tokens)  # (n * k_cur, V)
            cand = (beam_logp[:, :, None] + logp.reshape(len(active), k_cur, V)).reshape(
                len(active), k_cur * V
            )
            top = _top_k(cand, 2 * K)  # (n, 2K) flat indices, best first
            rows, new_tokens, new_logp, keep = [], [], [], []
            for i, b in enumerate(active):
                alive = []
                for rank, flat in enumerate(top[i]):
                    parent, token, lp = flat // V, flat % V, cand[i, flat]
                    if token == eos_id:
                        if rank < K:  # finishing continuations count only in the top K
                            prefix = tokens[i * k_cur + parent, 1:].tolist()
                            finished[b].append(_finish(prefix, lp, alpha, True))
                    elif len(alive) < K:
                        alive.append((parent, token, lp))
                if len(finished[b]) >= K:
                    continue  # sentence b is done
                if t == max_new - 1:  # out of room: finish what is alive
                    for parent, token, lp in alive:
                        prefix = tokens[i * k_cur + parent, 1:].tolist() + [int(token)]
                        finished[b].append(_finish(prefix, lp, alpha, False))
                    continue
                keep.append(b)
                for parent, token, lp in alive:
                    rows.append(i * k_cur + parent)
                    new_tokens.append(token)
                    new_logp.append(lp)
            if not keep:
                break
            rows = np.asarray(rows)
            stepper.select(rows)  # the cache rows follow their hypotheses
            tokens = np.concatenate([tokens[rows], np.asarray(new_tokens)[:, None]], axis=1)
            beam_logp = np.asarray(new_logp).reshape(len(keep), K)
            active = np.asarray(keep)
    model.train(was_training)
    return [sorted(hyps, key=lambda h: -h.score)[:n_best] for hyps in finished]


def _finish(prefix: list[int], log_prob: float, alpha: float, eos: bool) -> Hypothesis:
    length = len(prefix) + eos
    return Hypothesis(prefix, float(log_prob), float(log_prob / length_penalty(length, alpha)), eos)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries of each row, best first; ties: the smaller index first
    (so with k >= 1 the first column is ``argmax``, as greedy decoding takes)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part.sort(axis=1)  # ties at the boundary aside, order by index before the stable sort
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)
