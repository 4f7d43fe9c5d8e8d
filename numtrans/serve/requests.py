"""Reading and checking the explorer's JSON requests: every problem is a ``BadRequest`` that the
app answers as a 4xx ``{"error": "..."}`` naming it (never a 500 or a traceback)."""

from __future__ import annotations

import json


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


async def read_body(request, max_body: int) -> dict:
    """The request's JSON object; 413 past ``max_body`` bytes (checked while streaming too, so a
    client that lies in Content-Length, or sends none, is still cut off)."""
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > max_body:
        raise BadRequest(f"body of {size} bytes is over the {max_body}-byte limit", 413)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_body:
            raise BadRequest(f"body is over the {max_body}-byte limit", 413)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


def number(body: dict, key: str, default, kind, lo=None, hi=None):
    """``body[key]`` as ``kind`` (int or float) within [lo, hi]; ``default`` when absent."""
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{key!r} must be a number, got {value!r}")
    if kind is int and value != int(value):
        raise BadRequest(f"{key!r} must be an integer, got {value!r}")
    value = kind(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise BadRequest(f"{key!r} must lie in [{lo}, {hi}], got {value}")
    return value


def choice(body: dict, key: str, default: str, allowed) -> str:
    value = body.get(key, default)
    if value not in allowed:
        raise BadRequest(f"{key!r} must be one of {list(allowed)}, got {value!r}")
    return value


def token_ids(body: dict, key: str, vocab_size: int, max_len: int):
    """``body[key]`` as a list of token ids in [0, vocab_size), at most ``max_len``; None if absent."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in value
    ):
        raise BadRequest(f"{key!r} must be a list of integer token ids")
    if len(value) > max_len:
        raise BadRequest(f"{key!r} has {len(value)} ids, more than {max_len}")
    bad = [i for i in value if not 0 <= i < vocab_size]
    if bad:
        raise BadRequest(f"{key!r} has ids outside [0, {vocab_size}): {bad[:5]}")
    return value
