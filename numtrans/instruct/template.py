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
    sid = {t: tokenizer.special_id(t) for t in CHAT_TOKENS}
    ids: list[int] = []
    mask: list[int] = []
    for m in messages:
        role = m["role"]
        body = tokenizer.encode(m["content"], allowed_special=())
        ids.append(sid[f"<|{role}|>"])
        mask.append(0)
        tail = body + ([sid["<|end|>"]] if role != "user" else [])
        ids.extend(tail)
        mask.extend([int(role == "assistant")] * len(tail))
    if add_generation_prompt:
        ids.append(sid["<|assistant|>"])
        mask.append(0)
    return (ids, mask) if return_mask else ids
