"""``numtrans sft``, ``numtrans dpo`` and ``numtrans chat``: from a GPT to an assistant.

    numtrans sft --out DIR [--model BASE_DIR] [--data FILE.jsonl] [--max-per-task N] [--steps N]
                 [--lora R] [--pack]
    numtrans dpo --model SFT_DIR --out DIR (--pairs FILE.jsonl | --make-pairs N) [--beta B]
                 [--lora R]
    mpirun -n P numtrans sft ... --ddp [--zero [2]]   (or dpo: data parallel; numtrans[mpi])
    numtrans chat --model DIR [--system TEXT] [--history FILE.json] [--temperature T]

``sft`` fine-tunes on the instruction set built from the bundled training splits
(``numtrans.instruct.instruction_set``: English -> Chinese translation and sentiment, several
phrasings each) or on a JSONL file of conversations, with the chat template and the loss on the
assistant's tokens only. Without ``--model`` it starts from a new GPT (``--n-layer`` ...) and a
byte-level BPE trained on the instruction texts. ``sft --lora R`` (with ``--model``) trains
rank-R adapters on attention and the chat markers' embedding rows only
(``numtrans.instruct.train.add_sft_lora``) and saves them merged: a plain chat model. ``dpo`` tunes an SFT model on preference pairs,
read from a file or made from the model's own samples ranked by chrF
(``numtrans.instruct.pairs``); ``--lora R`` trains rank-R LoRA adapters on every attention
and MLP projection instead of all weights, and merges them into the saved model. ``chat`` talks to a chat model: one message a line, ``/reset``,
``/system TEXT``, Ctrl-D (end of input) to quit (``/reset`` forgets the turns, not the
system message); ``echo "hi" | numtrans chat --model DIR``
answers and exits.

``sft --ddp`` and ``dpo --ddp`` (under ``mpirun -n P``) train data parallel: ``--batch-size``
stays the global batch, each rank trains on its rows of it, weighted by its share of the answer
tokens (or examples, or pairs), so the model is the one-process model to rounding. Rank 0 alone
reads the data (and makes ``dpo --make-pairs``'s pairs), prints, evaluates and writes ``--out``.
``--zero`` (with ``--ddp``) shards AdamW's state over the ranks (ZeRO-1), ``--zero 2`` the
gradients too (ZeRO-2).
"""

from __future__ import annotations

import json
import os
import sys

from .data_parallel import job, read_once, world_from_args
from .overrides import ZERO_OPTION

_DDP_HELP = (
    "data parallel over the ranks of mpirun (mpirun -n 2 numtrans {command} ... --ddp; "
    "pip install 'numtrans[mpi]'); rank 0 prints and saves"
)


def register(subparsers) -> None:
    """Add the ``sft``, ``dpo`` and ``chat`` parsers to ``subparsers``."""
    s = subparsers.add_parser(
        "sft", help="instruction-tune a GPT (chat template, assistant-only loss)",
        description="Supervised fine-tuning on the bundled instruction set or a JSONL file of "
        "conversations; writes a chat model directory.",
    )  # fmt: skip
    s.add_argument("--out", required=True, help="the chat model directory to write")
    s.add_argument("--model", help="a base GPT directory with a byte-level BPE tokenizer.json")
    s.add_argument("--data", help="JSONL, one conversation (list of role/content messages) a line")
    s.add_argument("--max-per-task", type=int, default=1000, help="examples per bundled task")
    s.add_argument("--steps", type=int, default=300)
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--log-every", type=int, default=25)
    s.add_argument("--lora", type=int, metavar="R",
                   help="train rank-R LoRA on attention + the chat-token rows; saved merged")  # fmt: skip
    s.add_argument("--loss-per", choices=("token", "example"), default="token",
                   help="average the loss over answer tokens, or per example first")  # fmt: skip
    s.add_argument("--pack", action="store_true",
                   help="pack several examples into each row, masked apart (block-diagonal)")  # fmt: skip
    s.add_argument("--ddp", action="store_true", help=_DDP_HELP.format(command="sft"))
    s.add_argument("--zero", **ZERO_OPTION)
    new = s.add_argument_group("a new model (without --model)")
    new.add_argument("--vocab-size", type=int, default=1024)
    new.add_argument("--block-size", type=int, default=128)
    new.add_argument("--n-layer", type=int, default=2)
    new.add_argument("--n-head", type=int, default=4)
    new.add_argument("--n-embd", type=int, default=128)
    s.set_defaults(func=sft_command)

    d = subparsers.add_parser(
        "dpo", help="preference-tune a chat model (DPO, frozen reference)",
        description="Direct Preference Optimization of an SFT model on (prompt, chosen, "
        "rejected) pairs from a file or made from the model's own chrF-ranked samples.",
    )  # fmt: skip
    d.add_argument("--model", required=True, help="the SFT model directory (also the reference)")
    d.add_argument("--out", required=True, help="the tuned model directory to write")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--pairs", help="JSONL preference pairs")
    src.add_argument("--make-pairs", type=int, metavar="N", help="sample pairs for N prompts")
    d.add_argument("--beta", type=float, default=0.1)
    d.add_argument("--steps", type=int, default=50)
    d.add_argument("--batch-size", type=int, default=8)
    d.add_argument("--lr", type=float, default=1e-5)
    d.add_argument("--val-fraction", type=float, default=0.1, help="pairs held out to evaluate")
    d.add_argument("--max-new-tokens", type=int, default=32, help="length of sampled answers")
    d.add_argument("--lora", type=int, metavar="R", help="train rank-R LoRA adapters only")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--log-every", type=int, default=10)
    d.add_argument("--ddp", action="store_true", help=_DDP_HELP.format(command="dpo"))
    d.add_argument("--zero", **ZERO_OPTION)
    d.set_defaults(func=dpo_command)

    c = subparsers.add_parser(
        "chat", help="talk to a chat model (one message a line; /reset, /system TEXT)",
        description="An interactive chat with a model written by `numtrans sft` or `dpo`. "
        "Reads one message a line from standard input; Ctrl-D quits.",
    )  # fmt: skip
    c.add_argument("--model", required=True, help="a chat model directory")
    c.add_argument("--system", help="a system message to start with")
    c.add_argument("--history", help="a JSON list of role/content messages to start from")
    c.add_argument("--max-new-tokens", type=int, default=128)
    c.add_argument("--temperature", type=float, default=0.7)
    c.add_argument("--top-k", type=int, default=None)
    c.add_argument("--top-p", type=float, default=None)
    c.add_argument("--seed", type=int, default=None)
    c.add_argument("--no-cache", action="store_true", help="recompute the whole context per token")
    c.set_defaults(func=chat_command)


GPT_PROJECTIONS = ("c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")


def _check_positive(args, *names) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {value}")


def _say(text: str) -> None:
    print(text, flush=True)


def _new_tokenizer(args, conversations):
    """A byte-level BPE learned on the conversations' text (for a new model)."""
    from ..tokenizers.bpe import ByteBPETokenizer

    texts = [m["content"] for conv in conversations for m in conv]
    return ByteBPETokenizer.train(texts, args.vocab_size)


def _new_gpt(args, tokenizer):
    """A fresh GPT of the ``--n-layer`` ... sizes over ``tokenizer``'s vocabulary."""
    from ..models.gpt import GPT, GPTConfig
    from ..random import manual_seed

    manual_seed(args.seed)
    config = GPTConfig(block_size=args.block_size, vocab_size=tokenizer.vocab_size,
                       n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)  # fmt: skip
    return GPT(config)


def sft_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    from ..instruct import instruction_set, prepare_model, train_sft
    from ..instruct.tasks import read_conversations
    from ..instruct.train import load_base_model, save_chat_model

    world = world_from_args(args)
    main, held = world is None or world.is_main, {}

    def read():  # the settings, the data and the base model (or the new tokenizer), checked
        _check_positive(args, "steps", "batch_size", "lr", "max_per_task", "log_every", "lora")
        if args.lora and not args.model:
            raise ValueError("--lora adapts a pretrained base: give --model BASE_DIR")
        if world is not None:
            from ..distributed import check_ranks_fit

            check_ranks_fit(args.batch_size, world.size, "--batch-size")
        if args.data:
            conversations, source = read_conversations(args.data), args.data
        else:
            conversations = instruction_set(seed=args.seed, max_per_task=args.max_per_task)
            source = f"bundled instruction set ({args.max_per_task} per task, training splits)"
        if args.model:
            held["model"], tokenizer = load_base_model(args.model)
        else:
            tokenizer = _new_tokenizer(args, conversations)
            held["model"] = _new_gpt(args, tokenizer)
        return conversations, source, tokenizer

    conversations, source, tokenizer = read_once(world, read)
    if "model" in held:
        model = held["model"]
    else:  # (ranks > 0: the same model; rank 0's weights are broadcast when training starts)
        model = load_base_model(args.model)[0] if args.model else _new_gpt(args, tokenizer)
    with job(world):
        added = prepare_model(model, tokenizer)
        _say(f"sft: {len(conversations)} conversations from {source}; {added} chat tokens "
             f"added, vocab {tokenizer.vocab_size}, {model.num_params():,} parameters")  # fmt: skip
        if args.lora:
            from ..instruct.train import add_sft_lora

            lora = add_sft_lora(model, tokenizer, args.lora)
            _say(f"LoRA rank {args.lora}: {lora['trainable']:,} of {lora['total']:,} parameters "
                 f"train (attention adapters + {len(lora['rows'])} chat-token rows)")  # fmt: skip
        if world is not None:
            terms = "answer tokens" if args.loss_per == "token" else "examples"
            _say(f"data parallel: {world.size} ranks share each global batch of "
                 f"{args.batch_size}, weighted by {terms}")  # fmt: skip
        losses = train_sft(model, tokenizer, conversations, args.steps, args.batch_size, args.lr,
                           args.seed, log=lambda s, v: _say(f"step {s}/{args.steps}  loss {v:.4f}"),
                           log_every=args.log_every, loss_per=args.loss_per, pack=args.pack,
                           world=world, zero=args.zero)  # fmt: skip
        if not main:
            return 0
        record = {"stage": "sft", "loss_per": args.loss_per, "pack": args.pack, "source": source,
                  "conversations": len(conversations), "base_model": args.model,
                  "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                  "first_loss": losses[0], "last_loss": losses[-1],
                  "lora_rank": args.lora}  # fmt: skip
        if world is not None:
            record.update(ranks=world.size, zero=args.zero)
        if args.lora:
            from ..peft import merge_and_unload

            merge_and_unload(model)  # saved merged: `chat` and `dpo` read it as any chat model
        save_chat_model(model, tokenizer, args.out, record)
        _say(f"saved the chat model to {args.out} (masked loss {losses[0]:.3f} -> "
             f"{losses[-1]:.3f})")  # fmt: skip
    return 0


def _split(pairs, fraction: float, seed: int):
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(pairs))
    n_val = int(round(len(pairs) * fraction)) if len(pairs) > 1 else 0
    return [pairs[i] for i in order[n_val:]], [pairs[i] for i in order[:n_val]]


def _fmt(stats: dict) -> str:
    line = (f"loss {stats['loss']:.4f}  margin {stats['reward_margin']:+.4f}  "
            f"accuracy {stats['reward_accuracy']:.3f}  KL estimate {stats['kl']:+.4f}")  # fmt: skip
    return line + (f"  token KL {stats['token_kl']:.5f}" if "token_kl" in stats else "")


def dpo_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    from ..instruct.pairs import (
        make_preference_pairs,
        normalize_pair,
        read_pairs,
        translation_prompts,
        write_pairs,
    )  # fmt: skip
    from ..instruct.preference import evaluate_preferences, frozen_copy, train_dpo
    from ..instruct.train import load_base_model, save_chat_model

    world = world_from_args(args)
    main, held = world is None or world.is_main, {}

    def read():  # the settings, the SFT model and the pairs (made here alone), checked
        _check_positive(args, "beta", "steps", "batch_size", "lr", "make_pairs",
                        "max_new_tokens", "lora")  # fmt: skip
        if not 0 <= args.val_fraction < 1:
            raise ValueError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
        if world is not None:
            from ..distributed import check_ranks_fit

            check_ranks_fit(args.batch_size, world.size, "--batch-size")
        if args.pairs and not os.path.isfile(args.pairs):
            raise FileNotFoundError(f"no such pairs file: {args.pairs}")
        model, tokenizer = load_base_model(args.model, chat=True)
        held.update(model=model, tokenizer=tokenizer)
        if args.pairs:
            return read_pairs(args.pairs), args.pairs
        made, ties = make_preference_pairs(model, tokenizer, translation_prompts(args.make_pairs,
                                           args.seed), args.seed,
                                           max_new_tokens=args.max_new_tokens)  # fmt: skip
        if not made:
            raise ValueError(f"all {ties} sampled pairs tied in chrF: no preferences to learn")
        os.makedirs(args.out, exist_ok=True)
        source = os.path.join(args.out, "pairs.jsonl")
        write_pairs(source, made)
        _say(f"made {len(made)} pairs from {args.make_pairs} Tatoeba training prompts "
             f"({ties} ties dropped) -> {source}")  # fmt: skip
        return [normalize_pair(p) for p in made], source

    pairs, source = read_once(world, read)
    if "model" in held:
        model, tokenizer = held["model"], held["tokenizer"]
    else:  # (ranks > 0: the same SFT model, read from the same directory)
        model, tokenizer = load_base_model(args.model, chat=True)
    with job(world):
        train, val = _split(pairs, args.val_fraction, args.seed)
        val = val if main else []  # (rank 0 alone evaluates)
        reference = frozen_copy(model)  # before any adapter: the plain SFT model
        if args.lora:
            from ..peft import apply_lora

            apply_lora(model, args.lora, 2 * args.lora, GPT_PROJECTIONS)
            _say(f"LoRA rank {args.lora}: {model.num_parameters(trainable_only=True):,} of "
                 f"{model.num_parameters():,} parameters train")  # fmt: skip
        before = evaluate_preferences(model, reference, val, tokenizer, args.beta) if val else None
        if before:
            _say(f"held-out ({len(val)} pairs) before: {_fmt(before)}")
        if world is not None:
            _say(f"data parallel: {world.size} ranks share each global batch of "
                 f"{args.batch_size} pairs")  # fmt: skip
        history = train_dpo(model, reference, train, tokenizer, args.steps, args.batch_size,
                            args.lr, args.beta, args.seed, log=lambda s, st: _say(
                            f"step {s}/{args.steps}  " + _fmt(st)), log_every=args.log_every,
                            world=world, zero=args.zero)  # fmt: skip
        if not main:
            return 0
        after = evaluate_preferences(model, reference, val, tokenizer, args.beta) if val else None
        if args.lora:
            from ..peft import merge_and_unload

            merge_and_unload(model)  # a plain GPT again: `numtrans chat` reads it as any other
        if after:
            _say(f"held-out ({len(val)} pairs) after:  {_fmt(after)}")
        record = {"stage": "dpo", "reference": args.model, "pairs": source,
                  "train_pairs": len(train), "val_pairs": len(val), "beta": args.beta,
                  "steps": args.steps, "lr": args.lr, "lora_rank": args.lora,
                  "last_step": history[-1], "val_before": before,
                  "val_after": after}  # fmt: skip
        if world is not None:
            record.update(ranks=world.size, zero=args.zero)
        save_chat_model(model, tokenizer, args.out, record)
        _say(f"saved the DPO model to {args.out}")
    return 0


def _read_history(path: str) -> list:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such history file: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            messages = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    from ..instruct.template import check_messages

    try:
        check_messages(messages)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return messages


def chat_command(args, extra: list[str]) -> int:
    if extra:
        raise ValueError(f"unexpected arguments {extra}")
    _check_positive(args, "max_new_tokens", "top_k", "top_p")
    from ..instruct.chat import ChatSession
    from ..instruct.train import load_base_model

    history = _read_history(args.history) if args.history else []
    model, tokenizer = load_base_model(args.model, chat=True)
    session = ChatSession(model, tokenizer, args.max_new_tokens, args.temperature, args.top_k,
                          args.top_p, args.seed, not args.no_cache, history)  # fmt: skip
    if args.system:
        session.set_system(args.system)
    interactive = sys.stdin.isatty()

    def note(text):
        print(f"({text})", file=sys.stderr, flush=True)

    def stream(piece):
        print(piece, end="", flush=True)

    while True:
        if interactive:
            print("you> ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:  # end of input (Ctrl-D)
            if interactive:
                print(file=sys.stderr)
            return 0
        text = line.rstrip("\n")
        if not text.strip():
            continue
        if text.strip() == "/reset":
            session.reset()
            note("conversation reset")
        elif text.startswith("/system"):
            session.set_system(text[len("/system") :].strip())
            note("system message set")
        elif text.startswith("/"):
            note(f"unknown command {text.split()[0]} (known: /reset, /system TEXT, Ctrl-D quits)")
        else:
            session.respond(text, on_text=stream, on_note=note)
            print(flush=True)
