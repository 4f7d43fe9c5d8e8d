"""Subcommands of the ``numtrans`` command, one module each.

Every module has ``register(subparsers)``, which adds its parsers; each parser sets
``func=handler`` with ``handler(args, extra: list[str]) -> int`` (the exit status). User errors
are raised as ``FileNotFoundError`` / ``ValueError``, which ``numtrans.cli.main`` prints as one
line (exit status 2).
"""
