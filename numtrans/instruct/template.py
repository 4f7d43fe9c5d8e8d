"""The chat template: a conversation as one token sequence with role markers.

    <|system|>You are terse.<|end|><|user|>Hi<|assistant|>Hello.<|end|>

Each marker is ONE token of the tokenizer, added with :func:`add_chat_tokens`. Message text is
encoded with ``allowed_special=()``, so a user who types ``"<|user|>"`` gets ordinary bytes and
can never forge a role marker; only this module puts marker ids into the sequence.
``apply_chat_template(messages, tokenizer, add_generation_prompt=True)`` ends with
``<|assistant|>``, the prompt from which the model writes its answer (Hugging Face's call).
"""

from __future__ import annotations

from collections.abc import Sequence

CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
ROLES = ("system", "user", "assistant")


def add_chat_tokens(tokenizer) -> int:
    """Register the four chat markers as special tokens; returns how many were new."""
    return tokenizer.add_special_tokens(CHAT_TOKENS)


def check_messages(messages) -> None:
    """One-line ValueError for anything that is not a list of {role, content} dicts."""
    if not isinstance(messages, (list, tuple)):
        raise ValueError(
            f"messages must be a list of role/content dicts, got {type(messages).__name__}"
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            raise ValueError(f"message {i} must be a dict with exactly 'role' and 'content'")
        if m["role"] not in ROLES:
            raise ValueError(f"message {i}: unknown role {m['role']!r}; expected one of {ROLES}")
        if not isinstance(m["content"], str):
            raise ValueError(f"message {i}: content must be a string")
        if m["role"] == "assistant" and not m["content"].strip():
            raise ValueError(f"message {i}: empty assistant turn")


def apply_chat_template(
    messages: Sequence[dict],
    tokenizer,
    add_generation_prompt: bool = False,
    return_mask: bool = False,
):
    """Token ids of the conversation (list[int]).

    Layout per turn: ``<|role|> content`` and, for system and assistant turns, ``<|end|>``
    (a user turn is closed by the next ``<|assistant|>``). ``return_mask=True`` also returns a
    0/1 list marking the assistant's tokens (its content and its ``<|end|>``): the only
    positions an SFT loss trains on.
    """
    check_messages(messages)
    ids: list[int] = []
    mask: list[int] = []
    for m in messages:
        turn = message_ids(m, tokenizer)
        ids.extend(turn)
        mask.extend([0] + [int(m["role"] == "assistant")] * (len(turn) - 1))
    if add_generation_prompt:
        ids.append(tokenizer.special_id("<|assistant|>"))
        mask.append(0)
    return (ids, mask) if return_mask else ids


def message_ids(message: dict, tokenizer) -> list[int]:
    """One turn's ids: ``<|role|>``, the content (no special tokens), and ``<|end|>`` unless it
    is a user turn. A conversation is the concatenation of its turns: a chat session can keep
    each turn's ids and extend the sequence (and its KV cache) one turn at a time."""
    role = message["role"]
    body = tokenizer.encode(message["content"], allowed_special=())
    end = [tokenizer.special_id("<|end|>")] if role != "user" else []
    return [tokenizer.special_id(f"<|{role}|>"), *body, *end]
