"""The explorer's web app: a JSON API over ``Probe`` and one self-contained HTML page.

    GET  /                 the explorer page (plain JS + SVG, no external resources)
    GET  /api/models       what is loaded: name, kind, layers, heads, views
    POST /api/tokenize     {"model", "text"}                         -> ids, pieces, special flags
    POST /api/attention    {"model", "text", "layer"?, "head"?}      -> weights (L, H, T, T) or one
    POST /api/next         {"model", "text", "temperature", "top_k", "top_p", "k"} -> top-k probs
    POST /api/generate     {"model", "text", "steps", "temperature", "top_k", "top_p", "seed"}
    POST /api/classify     {"model", "text"}                         -> class probabilities

Text longer than the model's context is TRUNCATED (GPT keeps the last tokens, BERT the first)
and the response says ``"truncated": true``. Bad input is a 4xx JSON ``{"error": "..."}``
naming the problem; bodies over ``max_body`` bytes are refused with 413. The forward passes run
in a worker thread (``run_in_threadpool``) so the event loop keeps serving; one lock per model
serialises them, since a model's modules are shared state.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from ..generation.sampling import sample_next
from .probe import Probe, next_token_distribution

MAX_BODY = 64 * 1024  # bytes
HERE = os.path.dirname(__file__)


def page_html() -> str:
    """The explorer page with its script inlined: one self-contained document."""
    with open(os.path.join(HERE, "explorer.html"), encoding="utf-8") as f:
        page = f.read()
    return page.replace("/*NT_STYLE*/", style_css()).replace("/*NT_JS*/", script_js())


def script_js() -> str:
    with open(os.path.join(HERE, "explorer.js"), encoding="utf-8") as f:
        return f.read()


def style_css() -> str:
    with open(os.path.join(HERE, "explorer.css"), encoding="utf-8") as f:
        return f.read()


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def _number(body: dict, key: str, default, kind, lo=None, hi=None):
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


class Explorer:
    """The loaded models and the request handlers."""

    def __init__(self, probes: list[Probe], max_body: int = MAX_BODY):
        if not probes:
            raise ValueError("the explorer needs at least one model")
        self.probes = {p.name: p for p in probes}
        if len(self.probes) != len(probes):
            raise ValueError(f"two models share a name: {[p.name for p in probes]}")
        self.locks = {name: threading.Lock() for name in self.probes}
        self.max_body = max_body

    # ------------------------------------------------------------------ plumbing
    async def _body(self, request: Request) -> dict:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > self.max_body:
            raise BadRequest(f"body of {size} bytes is over the {self.max_body}-byte limit", 413)
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > self.max_body:
                raise BadRequest(f"body is over the {self.max_body}-byte limit", 413)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        return body

    def _probe(self, body: dict) -> Probe:
        name = body.get("model")
        if name is None and len(self.probes) == 1:
            name = next(iter(self.probes))
        if name not in self.probes:
            raise BadRequest(f"unknown model {name!r}; loaded: {sorted(self.probes)}", 404)
        return self.probes[name]

    def _encode(self, probe: Probe, body: dict):
        text = body.get("text")
        if not isinstance(text, str):
            raise BadRequest("'text' must be a string")
        try:
            return probe.encode(text)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    async def _run(self, probe: Probe, fn, *args):
        def locked():
            with self.locks[probe.name]:
                return fn(*args)

        try:
            return await run_in_threadpool(locked)
        except ValueError as exc:  # e.g. a view this model has no head for
            raise BadRequest(str(exc)) from None

    def _handler(self, method):
        async def endpoint(request: Request):
            try:
                body = await self._body(request)
                return JSONResponse(await method(body))
            except BadRequest as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status)

        return endpoint

    # ------------------------------------------------------------------ views
    async def tokenize(self, body):
        probe = self._probe(body)
        ids, truncated = self._encode(probe, body)
        return {"model": probe.name, "tokens": probe.tokens(ids), "truncated": truncated}

    async def attention(self, body):
        probe = self._probe(body)
        layer = _number(body, "layer", None, int, 0, probe.n_layer - 1)
        head = _number(body, "head", None, int, 0, probe.n_head - 1)
        ids, truncated = self._encode(probe, body)
        w = await self._run(probe, probe.attention, ids)  # (L, H, T, T)
        if layer is not None:
            w = w[layer]
            if head is not None:
                w = w[head]
        elif head is not None:
            w = w[:, head]
        return {
            "model": probe.name,
            "tokens": probe.tokens(ids),
            "truncated": truncated,
            "layer": layer,
            "head": head,
            "weights": np.round(w.astype(np.float64), 6).tolist(),
        }

    def _sampling(self, body, probe):
        return dict(
            temperature=_number(body, "temperature", 1.0, float, 0.0, 100.0),
            top_k=_number(body, "top_k", None, int, 1, probe.config.vocab_size),
            top_p=_number(body, "top_p", None, float, 1e-6, 1.0),
        )

    async def next(self, body):
        probe = self._probe(body)
        opts = self._sampling(body, probe)
        k = _number(body, "k", 10, int, 1, 100)
        ids, truncated = self._encode(probe, body)
        logits = await self._run(probe, probe.next_logits, ids)
        p = next_token_distribution(logits, **opts)
        raw = next_token_distribution(logits)
        order = np.lexsort((-raw, -p))[:k]  # by sampling probability, ties by the raw one
        return {
            "model": probe.name,
            "truncated": truncated,
            **opts,
            "top": [
                {
                    "id": int(i),
                    "piece": probe.tokenizer.id_to_token(int(i)),
                    "prob": float(p[i]),
                    "raw_prob": float(raw[i]),
                }
                for i in order
            ],
        }

    async def generate(self, body):
        probe = self._probe(body)
        opts = self._sampling(body, probe)
        steps = _number(body, "steps", 1, int, 1, 64)
        seed = _number(body, "seed", 0, int, 0, 2**32 - 1)
        ids, truncated = self._encode(probe, body)

        def run():
            rng, out, context = np.random.default_rng(seed), [], list(ids)
            for _ in range(steps):
                logits = probe.next_logits(context)
                p = next_token_distribution(logits, **opts)
                t = opts["temperature"]
                nxt = int(sample_next(logits[None], t, opts["top_k"], opts["top_p"], rng)[0])
                context.append(nxt)
                out.append(
                    {
                        "id": nxt,
                        "piece": probe.tokenizer.id_to_token(nxt),
                        "prob": float(p[nxt]),
                        "kv_cache_length": min(len(context) - 1, probe.max_tokens),
                    }
                )
            return out, context

        out, context = await self._run(probe, run)
        return {
            "model": probe.name,
            "truncated": truncated,
            **opts,
            "steps": out,
            "text": probe.tokenizer.decode(context),
        }

    async def classify(self, body):
        probe = self._probe(body)
        ids, truncated = self._encode(probe, body)
        p = await self._run(probe, probe.classify, ids)
        return {"model": probe.name, "truncated": truncated, "probs": p.tolist()}

    async def models(self, request):
        return JSONResponse({"models": [p.describe() for p in self.probes.values()]})

    async def page(self, request):
        return HTMLResponse(page_html())


def create_app(model_dirs: list[str], max_body: int = MAX_BODY) -> Starlette:
    """A Starlette app serving the explorer for the given model directories."""
    explorer = Explorer([Probe(d) for d in model_dirs], max_body=max_body)

    async def not_found(request, exc):
        return JSONResponse({"error": f"no such page: {request.url.path}"}, status_code=404)

    async def bad_method(request, exc):
        return JSONResponse({"error": f"{request.method} is not allowed here"}, status_code=405)

    routes = [Route("/", explorer.page), Route("/api/models", explorer.models)]
    for name in ("tokenize", "attention", "next", "generate", "classify"):
        routes.append(
            Route(f"/api/{name}", explorer._handler(getattr(explorer, name)), methods=["POST"])
        )
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: bad_method})
    app.state.explorer = explorer
    return app
