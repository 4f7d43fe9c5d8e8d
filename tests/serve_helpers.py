"""Shared by the explorer tests: tiny saved models (GPT, translator, BERT MLM), a uvicorn server
on a free port, and a headless Chromium."""

from __future__ import annotations

import shutil
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


EN = "the cat sat on a mat. i love you. we go home now."
ZH = "猫坐在垫子上。我爱你。我们现在回家。"


def save_tiny_translator(directory, seed: int = 0) -> str:
    """A random 2+2 layer English -> Chinese translator (character tokenizers both sides,
    ``<pad> <unk> <bos> <eos>`` at 0..3), saved as ``Translator.save`` does."""
    from numtrans.models import Seq2SeqConfig, Seq2SeqTransformer
    from numtrans.translation import SPECIALS, Translator

    src, tgt = CharTokenizer.from_text(EN, SPECIALS), CharTokenizer.from_text(ZH, SPECIALS)
    cfg = Seq2SeqConfig(
        src_vocab_size=src.vocab_size, tgt_vocab_size=tgt.vocab_size, d_model=16, nhead=2,
        num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32, dropout=0.0, max_len=64,
    )  # fmt: skip
    model = Seq2SeqTransformer(cfg)
    rng = np.random.default_rng(seed)
    for p in model.parameters():  # larger than the init, so heads attend unevenly
        p.data[...] = rng.normal(0.0, 0.4, p.shape).astype(p.data.dtype)
    settings = {"max_length": 32, "beam_size": 3}
    Translator(model.eval(), src, tgt, settings).save(str(directory))
    return str(directory)


def save_tiny_bert(directory, head: str = "mlm", hf: bool = False, seed: int = 0) -> str:
    """A random 2-layer BERT with a WordPiece vocabulary (vocab.txt) and a ``head``: "mlm"
    (BertForMaskedLM) or "classify" (BertForSequenceClassification, 3 classes named in
    ``labels.json``). Saved by ``save_pretrained`` or, with ``hf``, in Hugging Face's layout."""
    from numtrans.finetune.data import LabelMap
    from numtrans.models import BertConfig, BertForSequenceClassification
    from numtrans.models.bert_heads import BertForMaskedLM
    from numtrans.models.hf import export_hf
    from numtrans.tokenizers import WordPieceTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted(set(EN.replace(".", " . ").split()))
    tok = WordPieceTokenizer(specials + words)
    cfg = BertConfig(
        vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, num_labels=3,
    )  # fmt: skip
    model = (BertForMaskedLM if head == "mlm" else BertForSequenceClassification)(cfg)
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data[...] = rng.normal(0.0, 0.4, p.shape).astype(p.data.dtype)
    (export_hf if hf else type(model).save_pretrained)(model, str(directory))
    tok.save_pretrained(str(directory))
    if head == "classify":
        LabelMap("classification", ["neg", "neutral", "pos"]).save(str(directory))
    return str(directory)


def save_tiny_bert_mlm(directory, hf: bool = False, seed: int = 0) -> str:
    return save_tiny_bert(directory, "mlm", hf, seed)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def launch_chromium(pw):
    """Debian's chromium through Playwright, or Playwright's own browser; pytest.skip (with the
    reason) when neither exists."""
    import pytest

    if CHROMIUM is not None:
        return pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
        return pw.chromium.launch()
    except Exception as exc:  # Playwright raises its own Error when no browser is installed
        pytest.skip(f"no chromium on PATH (apt-get install chromium) nor Playwright's: {exc}")


def watch_errors(page) -> list:
    """Console errors and uncaught exceptions of ``page``, collected as they happen."""
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors
