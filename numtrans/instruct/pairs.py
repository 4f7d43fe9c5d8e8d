"""Preference pairs from a real signal: the SFT model's own translations, ranked by chrF.

How a pair is made (:func:`make_preference_pairs`), for an English sentence x of the Tatoeba
*training* split (``translation.split_pairs``, seed 0) with its reference translation z:

1. prompt = one user turn, ``"Translate into Chinese: {x}"`` (the first SFT phrasing);
2. two answers y1, y2 are *sampled* from the SFT model (temperature 1.0 and top-k 20 by
   default), each until ``<|end|>`` or ``max_new_tokens``;
3. each is scored by sentence chrF against z (:func:`numtrans.metrics.sentence_chrf`);
4. ``chosen`` = the higher-scoring answer, ``rejected`` = the other; a tie (most often two
   identical samples) expresses no preference and the pair is dropped (the count is returned).

Nobody labels anything: the reference translation is the signal, chrF turns it into a ranking.
A file of pairs is JSONL, one object a line: ``{"prompt": [messages], "chosen": "...",
"rejected": "...", ...}`` (extra fields such as the chrF scores are kept), or TRL's implicit
form ``{"chosen": [messages], "rejected": [messages]}``, two whole conversations that must
share everything but the last (assistant) turn.
"""

from __future__ import annotations

import json

import numpy as np

from ..generation.generate import generate
from ..io import atomic_write_text
from ..metrics.chrf import sentence_chrf
from .tasks import TRANSLATE
from .template import apply_chat_template, check_messages


def translation_prompts(n: int, seed: int = 0) -> list[tuple[list[dict], str]]:
    """``n`` (prompt messages, reference) from the Tatoeba training split, in a seeded order."""
    from ..data.corpus import load_corpus
    from ..translation.data import split_pairs

    train, _, _ = split_pairs(load_corpus("tatoeba_cmn_eng"), seed=0)  # the SFT split
    order = np.random.default_rng(seed).permutation(len(train))[:n]
    return [([_user(TRANSLATE[0].format(x=train[i][0]))], train[i][1]) for i in order]


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def sample_responses(model, tokenizer, messages, n=2, max_new_tokens=48, temperature=1.0,
                     top_k=20, rng=None) -> list[str]:  # fmt: skip
    """``n`` sampled assistant answers to ``messages`` (the text before ``<|end|>``)."""
    end = tokenizer.special_id("<|end|>")
    prompt = apply_chat_template(messages, tokenizer, add_generation_prompt=True)
    budget = max(1, min(max_new_tokens, model.config.block_size - len(prompt)))
    prompt = prompt[-(model.config.block_size - budget) :]
    out = generate(model, np.array([prompt] * n), budget, temperature=temperature, top_k=top_k,
                   eos_id=end, rng=rng)  # fmt: skip
    answers = []
    for row in out[:, len(prompt) :].tolist():
        row = row[: row.index(end)] if end in row else row
        answers.append(tokenizer.decode(row, skip_special_tokens=True))
    return answers


def make_preference_pairs(model, tokenizer, prompts, seed=0, **sampling) -> tuple[list, int]:
    """(pairs, ties): one pair per (messages, reference) whose two samples differ in chrF."""
    rng = np.random.default_rng(seed)
    pairs, ties = [], 0
    for messages, reference in prompts:
        a, b = sample_responses(model, tokenizer, messages, 2, rng=rng, **sampling)
        sa, sb = sentence_chrf(a, reference), sentence_chrf(b, reference)
        if sa == sb or not a.strip() or not b.strip():
            ties += 1  # no preference (or an empty answer, which no template can hold)
            continue
        (chosen, sc), (rejected, sr) = sorted([(a, sa), (b, sb)], key=lambda t: -t[1])
        pairs.append({"prompt": messages, "chosen": chosen, "rejected": rejected,
                      "chosen_chrf": round(sc, 2), "rejected_chrf": round(sr, 2),
                      "reference": reference})  # fmt: skip
    return pairs, ties


def normalize_pair(obj, where: str = "pair") -> tuple[list[dict], str, str]:
    """(prompt messages, chosen text, rejected text) from either pair layout; one-line errors."""
    if not isinstance(obj, dict) or "chosen" not in obj or "rejected" not in obj:
        raise ValueError(f"{where}: expected an object with 'chosen' and 'rejected'")
    chosen, rejected = obj["chosen"], obj["rejected"]
    if "prompt" in obj:
        prompt = obj["prompt"]
        prompt = [_user(prompt)] if isinstance(prompt, str) else prompt
    elif isinstance(chosen, list) and isinstance(rejected, list):  # two whole conversations
        for side, conv in (("chosen", chosen), ("rejected", rejected)):
            if not conv or not isinstance(conv[-1], dict) or conv[-1].get("role") != "assistant":
                raise ValueError(f"{where}: {side} must end with an assistant turn")
        prompt = chosen[:-1]
        if prompt != rejected[:-1]:
            raise ValueError(f"{where}: chosen and rejected share no prompt")
        chosen, rejected = chosen[-1]["content"], rejected[-1]["content"]
    else:
        raise ValueError(f"{where}: no 'prompt', and chosen/rejected are not conversations")
    try:
        check_messages(prompt)
    except ValueError as exc:
        raise ValueError(f"{where}: prompt: {exc}") from None
    if not prompt or prompt[-1]["role"] != "user":
        raise ValueError(f"{where}: the prompt must end with a user turn")
    for side, text in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: {side} must be a non-empty answer string")
    if chosen == rejected:
        raise ValueError(f"{where}: chosen and rejected are the same answer")
    return prompt, chosen, rejected


def read_pairs(path: str) -> list[tuple[list[dict], str, str]]:
    """Preference pairs from a JSONL file (see the module docstring); errors name the line."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    pairs = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {n}: not JSON ({exc.msg})") from None
        pairs.append(normalize_pair(obj, f"{path}, line {n}"))
    if not pairs:
        raise ValueError(f"{path}: no preference pairs")
    return pairs


def write_pairs(path: str, pairs: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
