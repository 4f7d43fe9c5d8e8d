"""A multi-turn chat with a chat GPT, the KV cache kept from one turn to the next.

The conversation is kept as token ids, one list per turn (:func:`message_ids`), so the prompt
for turn k+1 is literally the prompt for turn k, its answer, and the new user turn:

    [<|system|> ... <|end|>] <|user|> hi <|assistant|> hello <|end|> <|user|> more <|assistant|>
    \\_____________________ already in the cache ______________________/\\____ fed now ____/

``respond`` feeds the model only the part of the prompt that the cache does not hold yet (the
cached ids must be an exact prefix of the new prompt; otherwise the cache is rebuilt). The
answer is sampled one token at a time, each fed back through the cache, until a special token
(``<|end|>`` normally) or the token budget.

A conversation that outgrows the model's ``block_size`` is cut from the oldest turn: whole
user/assistant exchanges go first (the system turn stays), then, if the newest message alone
is still too long, its oldest tokens; each cut is reported through ``on_note`` and rebuilds the
cache (positions move). Room for ``min(max_new_tokens, block_size // 2)`` answer tokens is
always kept, so an answer never fails partway: at worst it stops at the block's end.
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..generation.sampling import sample_next
from .template import CHAT_TOKENS, check_messages, message_ids


class ChatSession:
    """``respond(text)`` -> the assistant's answer; ``reset()``, ``set_system(text)``."""

    def __init__(self, model, tokenizer, max_new_tokens=128, temperature=0.7, top_k=None,
                 top_p=None, seed=None, use_cache=True, history=()):  # fmt: skip
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
        missing = [t for t in CHAT_TOKENS if t not in tokenizer.get_vocab()]
        if missing:
            raise ValueError(f"the tokenizer has no chat tokens {missing}: not a chat model")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_new_tokens, self.use_cache = max_new_tokens, use_cache
        self.sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        self.rng = np.random.default_rng(seed)
        self.stop_ids = set(tokenizer.special_ids)  # any marker ends the answer
        self.tokens_fed = 0  # tokens run through the model so far (prefill + decoding)
        self.reset()
        check_messages(list(history))
        for m in history:
            if m["role"] == "system":
                self.set_system(m["content"])
            else:
                self.turns.append(message_ids(m, tokenizer))

    def reset(self) -> None:
        """Forget the conversation (the system message stays if one was set)."""
        self.turns: list[list[int]] = []
        self.cache, self.cached = None, []
        self.system = getattr(self, "system", [])

    def set_system(self, text: str) -> None:
        self.system = message_ids({"role": "system", "content": text}, self.tokenizer)

    def _fit(self, prompt_turns, on_note):
        """The prompt ids, cut from the oldest turn until the answer has room in the block."""
        block = self.model.config.block_size
        limit = block - min(self.max_new_tokens, block // 2)
        assistant = [self.tokenizer.special_id("<|assistant|>")]

        def build():
            return [*self.system, *(i for t in prompt_turns for i in t), *assistant]

        prompt, dropped = build(), 0
        while len(prompt) > limit and len(prompt_turns) > 1:
            del prompt_turns[: 2 if len(prompt_turns) > 2 else 1]  # a user turn and its answer
            dropped += 1
            prompt = build()
        if dropped and on_note:
            on_note(f"context longer than the block ({block} tokens): dropped the oldest "
                    f"{dropped} exchange(s)")  # fmt: skip
        if len(prompt) > limit:
            if on_note:
                on_note(f"the message is too long for the block: kept its last {limit} tokens")
            prompt = prompt[-limit:]
        return prompt

    def _forward(self, ids):
        """Logits (V,) after feeding ``ids`` (through the cache when it is on)."""
        if self.use_cache:
            logits, _ = self.model(np.array([ids]), kv_cache=self.cache)
            self.cached.extend(ids)
        else:
            self.cached.extend(ids)
            logits, _ = self.model(np.array([self.cached]))
            ids = self.cached
        self.tokens_fed += len(ids)
        return logits.data[0, -1]

    def respond(self, text: str, on_text=None, on_note=None) -> str:
        """The answer to the user's ``text``; ``on_text(piece)`` streams it as it is decoded."""
        self.turns.append(message_ids({"role": "user", "content": text}, self.tokenizer))
        prompt = self._fit(self.turns, on_note)
        n = len(self.cached)
        reuse = self.use_cache and self.cache is not None and 0 < n < len(prompt)
        if not (reuse and prompt[:n] == self.cached):
            self.cache = self.model.make_kv_cache() if self.use_cache else None
            self.cached, n = [], 0
        budget = min(self.max_new_tokens, self.model.config.block_size - len(prompt))
        answer, shown = [], ""
        with no_grad():
            logits = self._forward(prompt[n:])
            while True:
                nxt = int(sample_next(logits[None], rng=self.rng, **self.sampling)[0])
                if nxt in self.stop_ids:
                    break
                answer.append(nxt)
                decoded = self.tokenizer.decode(answer)
                if on_text and not decoded.endswith("\ufffd"):  # wait for a whole character
                    on_text(decoded[len(shown) :])
                    shown = decoded
                if len(answer) >= budget:
                    if on_note:
                        on_note(f"the answer reached the token budget ({budget}) and was cut")
                    break
                logits = self._forward([nxt])
        end = self.tokenizer.special_id("<|end|>")
        self.turns.append([self.tokenizer.special_id("<|assistant|>"), *answer, end])
        text_out = self.tokenizer.decode(answer)
        if on_text and text_out != shown:
            on_text(text_out[len(shown) :])
        return text_out
