"""Supervised fine-tuning (SFT): next-token cross-entropy on the assistant's tokens only.

    for each step:  (input_ids (B, T), labels (B, T)) from the length-bucketed batches
                    loss = mean over labels != IGNORE_INDEX of -log p(label | tokens before it)
                    AdamW step, gradient norm clipped to 1.0

The batches are cut once (:func:`numtrans.instruct.sft.bucket_batches`, or with ``pack=True``
:func:`numtrans.instruct.sft.pack_batches`: several examples a row, masked apart) and visited in
a shuffled order, reshuffled every pass. :func:`prepare_model` turns a base GPT into a chat
model: it registers the chat markers in the tokenizer and grows the token embedding to match.

:func:`add_sft_lora` is the parameter-efficient variant (``numtrans sft --lora R``): rank-R
adapters on attention (``c_attn``, ``attn.c_proj``) and the chat markers' embedding rows
trained in full, everything else frozen. The rows must train: a new marker's row is random and
no low-rank update of the attention can make the model read or write it. They train as
*rows* (``trainable_token_indices``, ``numtrans.peft.tokens``), not as the whole table
(``modules_to_save``), because the table is V x C: for the small GPTs here it is most of the
model, and training it would leave little to call parameter-efficient; 4 rows are 4 x C numbers.
GPT's tied ``lm_head`` reads the same rows, so the model also learns to *emit* ``<|end|>``.

Data parallel (``train_sft(..., world=World)``, ``numtrans sft --ddp`` under ``mpirun -n P``):
every rank draws the same global batch and trains on its rows; each rank's gradient is weighted
by its share of the terms the loss averages (answer tokens, or examples) before the ranks'
gradients are averaged, so P ranks take the step one process takes on the whole batch
(``numtrans.distributed.DataParallelSteps``, also used by
:func:`numtrans.instruct.preference.train_dpo`).
"""

from __future__ import annotations

import numpy as np

from ..distributed import DataParallelSteps, check_ranks_fit
from ..finetune.dpo import sequence_logprobs
from ..functional.losses import cross_entropy
from ..optim import AdamW, clip_grad_norm_
from .sft import IGNORE_INDEX, bucket_batches, pack_batches, sft_example
from .template import add_chat_tokens


def prepare_model(model, tokenizer) -> int:
    """Add the chat tokens to ``tokenizer`` and resize ``model``'s embedding; returns how many
    tokens were new (0 for a model that is already a chat model)."""
    added = add_chat_tokens(tokenizer)
    if model.config.vocab_size != tokenizer.vocab_size:
        model.resize_token_embeddings(tokenizer.vocab_size)
    return added


def add_sft_lora(model, tokenizer, r: int, alpha: float | None = None) -> dict:
    """Rank-``r`` LoRA on attention plus trainable chat-token rows (see the module docstring);
    ``alpha`` defaults to 2 r. Returns ``{"trainable": n, "total": N, "rows": [ids]}``."""
    from ..peft import GPT_ATTENTION, apply_lora, trainable_parameters
    from .template import CHAT_TOKENS

    vocab = tokenizer.get_vocab()
    rows = [int(vocab[t]) for t in CHAT_TOKENS if t in vocab]
    if len(rows) != len(CHAT_TOKENS):
        raise ValueError("add_sft_lora needs the chat tokens: call prepare_model first")
    tokens = {"transformer.wte": rows}
    if not model.config.tie_weights:  # an untied lm_head needs its own rows to emit them
        tokens["lm_head"] = rows
    apply_lora(model, r, 2 * r if alpha is None else alpha, GPT_ATTENTION,
               trainable_token_indices=tokens)  # fmt: skip
    trained, total = trainable_parameters(model)
    return {"trainable": trained, "total": total, "rows": rows}


def _sft_loss(model, x, y, doc, loss_per: str):
    """The batch's SFT loss: a mean over its answer tokens, or over its examples."""
    if loss_per == "token":
        return model(x, y, document_ids=doc)[1]
    return _example_mean_loss(model, x, y, doc)


def _loss_terms(y, doc, loss_per: str) -> int:
    """How many terms the SFT loss of a batch averages: its answer tokens (``"token"``), its
    rows (``"example"``, one example a row) or its packed examples with an answer (``"example"``,
    packed: each lies within one row, so a shard of rows holds whole examples)."""
    valid = y != IGNORE_INDEX
    if loss_per == "token":
        return int(valid.sum())
    if doc is None:
        return len(y)
    if not valid.any():
        return 0
    row = np.nonzero(valid)[0]  # (the same (row, document) key as _example_mean_loss)
    return len(np.unique(row * (int(doc.max()) + 1) + doc[valid]))


def train_sft(model, tokenizer, conversations, steps=100, batch_size=8, lr=1e-3, seed=0,
              log=None, log_every=10, weight_decay=0.0, max_seconds=None,
              loss_per="token", pack=False, world=None, zero=False):  # fmt: skip
    """Fine-tune ``model`` on ``conversations`` (lists of messages); returns the step losses.

    Examples are cut to the model's ``block_size``; ``log(step, loss)`` every ``log_every``.
    ``max_seconds`` stops earlier, on the clock (a benchmark's time budget).
    ``loss_per="example"`` averages each example's token losses first, then the examples, so a
    two-token label weighs as much as a twenty-token translation (with ``"token"``, the
    default and GPT's own loss, every answer token weighs the same).
    ``pack=True`` packs several examples into each row of ``block_size`` tokens (``batch_size``
    rows a step), each attending only to itself; the losses are the same averages.

    ``world`` (``numtrans.distributed.init_world()``, under ``mpirun -n P``): data parallel.
    ``batch_size`` stays the global batch; every rank trains on its rows of it, weighted by its
    share of the answer tokens (``"token"``) or examples (``"example"``), so the ranks take the
    one-process step (:class:`DataParallelSteps`); the returned and logged losses are the global
    batch's, on every rank (only rank 0 should ``log``), and rank 0's clock ends a timed run.
    ``zero=True`` or 1 (with ``world``) shards AdamW's state over the ranks (ZeRO-1): the same
    parameters, about 1/P of the moments on each rank; ``zero=2`` the gradients too (ZeRO-2).
    """
    if loss_per not in ("token", "example"):
        raise ValueError(f"loss_per must be 'token' or 'example', got {loss_per!r}")
    import time

    deadline = None if max_seconds is None else time.perf_counter() + max_seconds
    if not conversations:
        raise ValueError("train_sft needs at least one conversation")
    if zero and world is None:
        raise ValueError("zero=True shards AdamW's state over data-parallel ranks: give world=")
    if world is not None:
        check_ranks_fit(batch_size, world.size)
    block = model.config.block_size
    examples = [sft_example(c, tokenizer, block) for c in conversations]
    if pack:
        batches = pack_batches(examples, batch_size, block, pad_id=0)
    else:  # (x, y, None): no document ids, one example a row
        batches = [(x, y, None) for x, y in bucket_batches(examples, batch_size, pad_id=0)]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = AdamW(params, lr=lr, weight_decay=weight_decay)
    ddp = None if world is None else DataParallelSteps(world, optimizer, [model], seed, zero)
    optimizer = optimizer if ddp is None else ddp.optimizer  # (with zero, the ZeRO wrapper)
    clip = clip_grad_norm_ if ddp is None else ddp.clip_grad_norm_  # (ZeRO-2: the global norm)
    rng = np.random.default_rng(seed)
    order, pos, losses = rng.permutation(len(batches)), 0, []
    model.train()
    for step in range(1, steps + 1):
        if pos == len(order):
            order, pos = rng.permutation(len(batches)), 0
        x, y, doc = batches[order[pos]]
        pos += 1
        optimizer.zero_grad()
        if ddp is None:
            loss = _sft_loss(model, x, y, doc, loss_per)
            value = loss.item()
            if not np.isfinite(value):
                raise FloatingPointError(f"SFT step {step}: the loss is {value}")
            loss.backward()
        else:
            value = _sft_step_on_rows(ddp, model, x, y, doc, loss_per, step)
        clip(params, 1.0)
        optimizer.step()
        losses.append(value)
        out_of_time = deadline is not None and time.perf_counter() > deadline
        if ddp is not None and deadline is not None:
            out_of_time = ddp.agree(out_of_time)
        if log is not None and (step % log_every == 0 or step == steps or out_of_time):
            log(step, value)
        if out_of_time:
            break
    if ddp is not None:
        ddp.check_same_state("at the end")
    model.eval()
    return losses


def _sft_step_on_rows(ddp: DataParallelSteps, model, x, y, doc, loss_per: str, step: int) -> float:
    """This rank's backward on its rows of the global batch ``(x, y, doc)``, weighted by its
    share of the loss's terms, then the ranks' gradients averaged; returns the global loss."""
    ddp.start_step(step)
    rows = ddp.rows(len(x))
    xs, ys, ds = x[rows], y[rows], None if doc is None else doc[rows]
    weighted = 0.0
    if len(xs):  # (a short last batch may leave a rank without rows: it adds nothing)
        weight = ddp.weight(_loss_terms(ys, ds, loss_per), _loss_terms(y, doc, loss_per))
        loss = _sft_loss(model, xs, ys, ds, loss_per)
        weighted = loss.item() * weight
        if np.isfinite(weighted):  # (a non-finite loss stops every rank below, alike)
            (loss if weight == 1.0 else loss * weight).backward()
    value = float(ddp.mean([weighted])[0])
    if not np.isfinite(value):
        raise FloatingPointError(f"SFT step {step}: the loss is {value} (over all ranks)")
    ddp.average_gradients()
    return value


def _example_mean_loss(model, x, y, document_ids=None):
    """mean over examples e of ( -sum_{t in e} log p(y_t) / n_e ), n_e = e's answer tokens.

    Unpacked, example e is row b. Packed, it is a (row, document) pair: each answer token gets
    the weight 1 / (n_e * number of examples with an answer) in a weighted token sum."""
    if document_ids is None:
        counts = np.maximum((y != IGNORE_INDEX).sum(axis=1), 1)  # (B,)
        return -(sequence_logprobs(model, x, y) / counts.astype(np.float32)).mean()
    logits, _ = model(x, document_ids=document_ids)
    valid = (y != IGNORE_INDEX).reshape(-1)
    key = (np.arange(len(y))[:, None] * (document_ids.max() + 1) + document_ids).reshape(-1)
    _, example, n = np.unique(key[valid], return_inverse=True, return_counts=True)
    weight = np.zeros(valid.shape, logits.dtype)
    weight[valid] = 1.0 / (n[example] * len(n))
    token_nll = cross_entropy(logits.reshape(valid.size, -1), y.reshape(-1), reduction="none")
    return (token_nll * weight).sum()


def save_chat_model(model, tokenizer, directory: str, record: dict | None = None) -> None:
    """``config.json`` + ``model.safetensors`` + ``tokenizer.json`` (+ ``record`` as
    ``training.json``), every file written atomically."""
    import json
    import os

    from ..io import atomic_write_text

    model.save_pretrained(directory)
    tokenizer.save(os.path.join(directory, "tokenizer.json"))  # temp file, then rename
    if record is not None:
        atomic_write_text(os.path.join(directory, "training.json"), json.dumps(record, indent=1))


def load_base_model(directory: str, chat: bool = False):
    """(GPT, ByteBPETokenizer) from a model directory; ``chat=True`` requires the chat tokens.

    The chat markers must be single tokens, which only the byte-level BPE tokenizer can add:
    a character-level model (``numtrans pretrain``) is refused with a one-line error.
    """
    import os

    from ..models.gpt import GPT
    from ..tokenizers import load as load_tokenizer
    from ..tokenizers.bpe import ByteBPETokenizer
    from .template import CHAT_TOKENS

    path = os.path.join(directory, "tokenizer.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no tokenizer.json in {directory}")
    tokenizer = load_tokenizer(path)
    if not isinstance(tokenizer, ByteBPETokenizer):
        raise ValueError(
            f"{path} is a {type(tokenizer).__name__}; chat markers need a byte-level BPE "
            "tokenizer (ByteBPETokenizer)"
        )
    model = GPT.from_pretrained(directory)
    if chat and not all(t in tokenizer.get_vocab() for t in CHAT_TOKENS):
        raise ValueError(f"{directory} is not a chat model (no chat tokens): run `numtrans sft`")
    if tokenizer.vocab_size != model.config.vocab_size and chat:
        raise ValueError(
            f"{path} has {tokenizer.vocab_size} tokens but the model has "
            f"vocab_size={model.config.vocab_size}: they do not belong together"
        )
    return model, tokenizer
