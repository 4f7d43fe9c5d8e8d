"""The program ``tests/test_distributed_instruct.py`` starts under ``mpirun -n P`` (no tests).

    mpirun -n P python tests/test_distributed_instruct_worker.py TOKENIZER OUT
        every case of ``CASES``: ``STEPS`` data-parallel SFT or DPO steps of a tiny float64 GPT,
        each rank built from another seed (rank 0's weights are broadcast); rank 0 writes each
        case's parameters to OUT/CASE.npz and its losses (DPO: step statistics) to OUT/CASE.json,
        and how many parameters' AdamW states and gradients each rank holds to OUT/CASE.state.json.
        Then a timed SFT run in which only rank 0's time is up at once (max_seconds 0, the others
        an hour): every rank's number of steps goes to OUT/timed.json

``model``, ``conversations``, ``pairs`` and ``run_case`` are shared with the one-process
reference in the tests, which calls ``run_case`` with ``world=None``.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

STEPS = 4
# (name, job, loss_per, pack, batch_size): the global batch of every case
CASES = [
    ("sft-token", "sft", "token", False, 4),  # 11 examples: batches of 4, 4, 3 (1 + 2 rows)
    ("sft-example", "sft", "example", False, 4),
    ("sft-token-packed", "sft", "token", True, 2),  # packed rows of 48 tokens, 2 a batch
    ("sft-example-packed", "sft", "example", True, 2),
    ("dpo", "dpo", None, False, 3),  # 3 pairs a step: 1 + 2 over 2 ranks
    ("sft-token-zero", "sft", "token", False, 4),  # ZeRO-1: the same step, sharded AdamW state
    ("dpo-zero", "dpo", None, False, 3),
    ("sft-token-zero2", "sft", "token", False, 4),  # ZeRO-2: the gradients sharded too
    ("dpo-zero2", "dpo", None, False, 3),
]


def model(tokenizer, seed: int = 0):
    """A tiny float64 GPT over ``tokenizer``'s vocabulary (chat tokens included)."""
    import numtrans as nt
    from numtrans.models.gpt import GPT, GPTConfig

    nt.manual_seed(seed)
    config = GPTConfig(block_size=48, vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2,
                       n_embd=16)  # fmt: skip
    return GPT(config).to(np.dtype("float64"))


def conversations():
    """11 question-answer pairs whose answers have 1 to 6 words: the rows of a batch (and so the
    two halves of it) hold different numbers of answer tokens."""
    answers = ["yes", "no it is not", "positive", "negative, very negative indeed",
               "good", "bad and sad", "it is fine", "ok", "a red cat sat on the mat",
               "maybe", "not at all good"]  # fmt: skip
    return [[{"role": "user", "content": f"is item {i} good?"},
             {"role": "assistant", "content": a}] for i, a in enumerate(answers)]  # fmt: skip


def pairs():
    """7 (prompt, chosen, rejected) triples of uneven lengths."""
    words = [("cat", "a cat", "no dog here at all"), ("dog", "a dog", "cat"),
             ("red", "it is red", "blue"), ("blue", "blue", "red or green or yellow"),
             ("mat", "the mat", "a cat"), ("sat", "it sat", "it ran and ran"),
             ("big", "big", "small")]  # fmt: skip
    return [([{"role": "user", "content": f"say {w}"}], good, bad) for w, good, bad in words]


def run_case(case: str, tokenizer, world=None, seed: int = 0):
    """(model, losses) after ``STEPS`` steps of ``case``; ``world=None``: one process."""
    from numtrans.instruct.preference import frozen_copy, train_dpo
    from numtrans.instruct.train import train_sft

    _, job, loss_per, pack, batch_size = next(c for c in CASES if c[0] == case)
    zero = 0 if world is None else 2 if case.endswith("-zero2") else int(case.endswith("-zero"))
    policy = model(tokenizer, seed)
    if job == "dpo":
        reference = frozen_copy(policy)  # (on rank 1 another model: the broadcast fixes it)
        history = train_dpo(policy, reference, pairs(), tokenizer, steps=STEPS,
                            batch_size=batch_size, lr=1e-2, beta=0.5, world=world,
                            zero=zero)  # fmt: skip
        return policy, history
    losses = train_sft(policy, tokenizer, conversations(), steps=STEPS, batch_size=batch_size,
                       lr=1e-2, loss_per=loss_per, pack=pack, world=world, zero=zero)  # fmt: skip
    return policy, losses


def _record_data_parallel_steps() -> list:
    """Every ``DataParallelSteps`` made from now on, appended to the returned list (to count the
    optimiser states each rank holds: with ZeRO-1 a share of them, else all)."""
    from numtrans.distributed import steps

    made, init = [], steps.DataParallelSteps.__init__

    def recording(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self)

    steps.DataParallelSteps.__init__ = recording
    return made


def main(tokenizer_path: str, out: str) -> None:
    from numtrans import distributed as dist
    from numtrans.tokenizers import load

    world = dist.init_world()
    tokenizer = load(tokenizer_path)
    made = _record_data_parallel_steps()
    with dist.abort_on_error(world):
        for case, *_ in CASES:
            policy, losses = run_case(case, tokenizer, world, seed=world.rank)
            states = len(made[-1].optimizer.state)  # AdamW states, gradients after the last step
            grads = sum(p.grad is not None for p in policy.parameters())
            held = world.comm.gather([states, grads], root=0)
            if world.is_main:
                np.savez(os.path.join(out, case + ".npz"), **policy.state_dict())
                with open(os.path.join(out, case + ".json"), "w", encoding="utf-8") as f:
                    json.dump(losses, f)
                with open(os.path.join(out, case + ".state.json"), "w", encoding="utf-8") as f:
                    json.dump(held, f)
        from numtrans.instruct.train import train_sft

        seconds = 0.0 if world.is_main else 3600.0  # rank 0's clock decides for every rank
        losses = train_sft(model(tokenizer), tokenizer, conversations(), steps=STEPS,
                           batch_size=4, max_seconds=seconds, world=world)  # fmt: skip
        steps = world.comm.gather(len(losses), root=0)
        if world.is_main:
            with open(os.path.join(out, "timed.json"), "w", encoding="utf-8") as f:
                json.dump(steps, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
