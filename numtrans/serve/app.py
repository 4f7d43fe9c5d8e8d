"""The explorer's web app: a JSON API over ``Probe`` and one self-contained HTML page.

    GET  /                 the explorer page (plain JS + SVG, no external resources)
    GET  /api/models       what is loaded: name, kind, layers, heads, views
    POST /api/tokenize     {"model", "text"}                         -> ids, pieces, special flags
    POST /api/attention    {"model", "text", "layer"?, "head"?}      -> weights (L, H, T, T) or one
    POST /api/next         {"model", "text", "temperature", "top_k", "top_p", "k"} -> top-k probs
    POST /api/generate     {"model", "text", "steps", "temperature", "top_k", "top_p", "seed"}
    POST /api/classify     {"model", "text"}                -> labels + probabilities, or a value
    POST /api/fill-mask    {"model", "text" with [MASK], "k"}        -> top-k tokens per [MASK]
    POST /api/translate    {"model", "text", "beam_size", "n_best", "alpha", "max_new_tokens"}
                           -> beam hypotheses, best first, with their scores
    POST /api/attention    for a translator also takes "stack" ("cross" (default), "encoder",
                           "decoder"), "target_ids" (force a translation) and the beam options

Text longer than the model's context is TRUNCATED (GPT keeps the last tokens, BERT the first
and its [SEP], a translator the first ``max_length - 1`` and its <eos>) and the response says
``"truncated": true``. /api/generate decodes with a KV cache and reports, for every step, the
positions the cache held and whether the step filled it (prefill) or reused it. Bad input is a 4xx JSON ``{"error": "..."}``
naming the problem; bodies over ``max_body`` bytes are refused with 413. The forward passes run
in a worker thread (``run_in_threadpool``) so the event loop keeps serving; one lock per model
serialises them, since a model's modules are shared state.
"""

from __future__ import annotations

import threading

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from .assets import page_html
from .probe import Probe, load_probe, next_token_distribution, unique_names
from .requests import BadRequest, choice, number, read_body, token_ids
from .seq2seq import STACKS

MAX_BODY = 64 * 1024  # bytes


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
        return await read_body(request, self.max_body)

    def _probe(self, body: dict) -> Probe:
        name = body.get("model")
        if name is None and len(self.probes) == 1:
            name = next(iter(self.probes))
        if name not in self.probes:
            raise BadRequest(f"unknown model {name!r}; loaded: {sorted(self.probes)}", 404)
        return self.probes[name]

    def _require(self, probe, view: str) -> None:
        """A view the model has no head for is the client's mistake: 400, naming the views."""
        if view not in probe.views:
            raise BadRequest(
                f"model {probe.name!r} ({probe.kind}) has no {view!r} view; it has {probe.views}"
            )

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
        if probe.family == "seq2seq":
            return await self._cross_attention(probe, body)
        layer = number(body, "layer", None, int, 0, probe.n_layer - 1)
        head = number(body, "head", None, int, 0, probe.n_head - 1)
        ids, truncated = self._encode(probe, body)
        w = await self._run(probe, probe.attention, ids)  # (L, H, T, T)
        return {
            "model": probe.name,
            "tokens": probe.tokens(ids),
            "truncated": truncated,
            "layer": layer,
            "head": head,
            "weights": _pick(w, layer, head),
        }

    def _beam(self, body, probe):
        s = probe.translator.settings
        beam = number(body, "beam_size", s["beam_size"], int, 1, 16)
        return dict(
            beam_size=beam,
            n_best=number(body, "n_best", beam, int, 1, beam),
            alpha=number(body, "alpha", s["length_penalty"], float, 0.0, 5.0),
            max_new_tokens=number(body, "max_new_tokens", None, int, 1, 256),
        )

    async def translate(self, body):
        probe = self._probe(body)
        self._require(probe, "translate")
        opts = self._beam(body, probe)
        ids, truncated = self._encode(probe, body)
        hyps = await self._run(probe, lambda: probe.search(body["text"], **opts))
        return {
            "model": probe.name,
            "truncated": truncated,
            **opts,
            "source_tokens": probe.tokens(ids),
            "hypotheses": probe.hypotheses(hyps),
        }

    async def _cross_attention(self, probe, body):
        """A translator's attention: one stack, for the best beam or the given ``target_ids``."""
        stack = choice(body, "stack", "cross", STACKS)
        layer = number(body, "layer", None, int, 0, probe.n_layers(stack) - 1)
        head = number(body, "head", None, int, 0, probe.n_head - 1)
        limit = probe.config.max_len - 1
        target = token_ids(body, "target_ids", probe.config.tgt_vocab_size, limit)
        opts = self._beam(body, probe)
        ids, truncated = self._encode(probe, body)

        def run():
            nonlocal target
            if target is None:  # the best beam, as /api/translate finds it
                target = probe.search(body["text"], **{**opts, "n_best": 1})[0].tokens
            return probe.stack_view(ids, target, stack)

        view = await self._run(probe, run)
        return {
            "model": probe.name,
            "truncated": truncated,
            "stack": stack,
            "tokens": probe.tokens(ids),
            "target_ids": list(target),
            "translation": probe.translator.decode(target),
            "query_tokens": view["query_tokens"],
            "key_tokens": view["key_tokens"],
            "layer": layer,
            "head": head,
            "weights": _pick(view["weights"], layer, head),
        }

    def _sampling(self, body, probe):
        return dict(
            temperature=number(body, "temperature", 1.0, float, 0.0, 100.0),
            top_k=number(body, "top_k", None, int, 1, probe.config.vocab_size),
            top_p=number(body, "top_p", None, float, 1e-6, 1.0),
        )

    async def next(self, body):
        probe = self._probe(body)
        self._require(probe, "next")
        opts = self._sampling(body, probe)
        k = number(body, "k", 10, int, 1, 100)
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
        """``steps`` tokens with a real KV cache (``probe.generate_steps``): each step reports
        how many positions the cache held when it ran. Requests share no state, so every request
        fills its own cache from the text (the prefill) before the first step."""
        probe = self._probe(body)
        self._require(probe, "generate")
        opts = self._sampling(body, probe)
        steps = number(body, "steps", 1, int, 1, 64)
        seed = number(body, "seed", 0, int, 0, 2**32 - 1)
        ids, truncated = self._encode(probe, body)
        out, context = await self._run(probe, probe.generate_steps, ids, steps, opts, seed)
        return {
            "model": probe.name,
            "truncated": truncated,
            **opts,
            "steps": out,
            "text": probe.tokenizer.decode(context),
        }

    async def classify(self, body):
        probe = self._probe(body)
        self._require(probe, "classify")
        ids, truncated = self._encode(probe, body)
        answer = await self._run(probe, probe.classify, ids)
        return {"model": probe.name, "truncated": truncated, **answer}

    async def fill_mask(self, body):
        probe = self._probe(body)
        self._require(probe, "fill-mask")
        k = number(body, "k", 5, int, 1, 100)
        ids, truncated = self._encode(probe, body)
        masks = await self._run(probe, probe.fill_mask, ids, k)
        return {"model": probe.name, "truncated": truncated, "tokens": probe.tokens(ids),
                "masks": masks}  # fmt: skip

    async def models(self, request):
        return JSONResponse({"models": [p.describe() for p in self.probes.values()]})

    async def page(self, request):
        return HTMLResponse(page_html())


def _pick(w: np.ndarray, layer, head) -> list:
    """(L, H, Tq, Tk) weights, or one layer / one head / one map of them, as JSON lists."""
    if layer is not None:
        w = w[layer]
        if head is not None:
            w = w[head]
    elif head is not None:
        w = w[:, head]
    return np.round(w.astype(np.float64), 6).tolist()


def create_app(
    model_dirs: list[str], max_body: int = MAX_BODY, names: list[str] | None = None
) -> Starlette:
    """A Starlette app serving the explorer for the given model directories."""
    names = unique_names(model_dirs, names)
    explorer = Explorer([load_probe(d, n) for d, n in zip(model_dirs, names)], max_body=max_body)

    async def not_found(request, exc):
        return JSONResponse({"error": f"no such page: {request.url.path}"}, status_code=404)

    async def bad_method(request, exc):
        return JSONResponse({"error": f"{request.method} is not allowed here"}, status_code=405)

    routes = [Route("/", explorer.page), Route("/api/models", explorer.models)]
    views = ("tokenize", "attention", "next", "generate", "classify", "fill_mask", "translate")
    for name in views:
        handler = explorer._handler(getattr(explorer, name))
        routes.append(Route(f"/api/{name.replace('_', '-')}", handler, methods=["POST"]))
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: bad_method})
    app.state.explorer = explorer
    return app
