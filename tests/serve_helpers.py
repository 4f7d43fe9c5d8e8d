"""Shared by the explorer tests: a tiny saved GPT and a uvicorn server on a free port."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from numtrans.models.gpt import GPT, GPTConfig
from numtrans.tokenizers import CharTokenizer

CORPUS = "to be or not to be, that is the question.\nwhether tis nobler in the mind\n"


def save_tiny_gpt(directory, seed: int = 0, block_size: int = 24) -> str:
    """A random 2-layer, 2-head GPT with a character tokenizer, saved like `numtrans pretrain`."""
    tok = CharTokenizer.from_text(CORPUS)
    cfg = GPTConfig(
        block_size=block_size, vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=16
    )
    model = GPT(cfg)
    rng = np.random.default_rng(seed)
    for p in model.parameters():  # larger than GPT's init, so the heads attend unevenly
        p.data[...] = rng.normal(0.0, 0.4, p.shape).astype(p.data.dtype)
    model.save_pretrained(str(directory))
    tok.save(str(directory / "tokenizer.json"))
    return str(directory)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving ``app`` in a background thread on 127.0.0.1."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
