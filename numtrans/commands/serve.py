"""``numtrans serve --model DIR [--name NAME] [--model DIR2 [--name NAME2] ...] [--host 127.0.0.1]
[--port 8000]``.

Each model is named by its ``--name`` (given for every model or for none), else by its
directory's base name (``-2``, ``-3``... where two share one); requests pick a model by name.

Starts the explorer (``numtrans/serve``) on uvicorn. It binds the loopback address unless told
otherwise; any other host exposes the models to the network, so that prints a warning.
"""

from __future__ import annotations

import ipaddress
import sys

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def register(subparsers) -> None:
    """Add the ``serve`` parser to ``subparsers``."""
    s = subparsers.add_parser(
        "serve",
        help="explore models in the browser (tokens, attention, next token)",
        description="Serve the explorer page and its JSON API for saved model directories.",
    )
    s.add_argument(
        "--model", action="append", required=True, help="a model directory (repeat for more)"
    )
    s.add_argument(
        "--name",
        action="append",
        help="the model's name in the explorer and the API (repeat, one per --model; "
        "default: the directory's name)",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.set_defaults(func=_serve)


def _serve(args, extra) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port must lie in [0, 65535], got {args.port}")
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as exc:
        raise ValueError(
            f"serve needs the serve extra (pip install numtrans[serve]): {exc}"
        ) from None
    app = create_app(args.model, names=args.name)
    if not is_loopback(args.host):
        print(
            f"numtrans serve: warning: binding {args.host}, not loopback: anyone who can reach "
            "this machine can use the models",
            file=sys.stderr,
        )
    print(f"numtrans explorer on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
