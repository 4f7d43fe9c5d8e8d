"""``numtrans sft`` / ``dpo`` / ``chat`` end to end in a subprocess, on a tiny GPT trained here
(a few seconds), and their bad input as one ``numtrans CMD: error:`` line with status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

TINY = ["--vocab-size", "300", "--block-size", "96", "--n-layer", "1", "--n-head", "2",
        "--n-embd", "32"]  # fmt: skip


def run(args, cwd, stdin=None):
    # the installed numtrans, run outside the repository (see tests/test_cli_kb.py)
    return subprocess.run([sys.executable, "-m", "numtrans.cli", *args], cwd=cwd,
                          env=dict(os.environ), input=stdin, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def one_error_line(out, command, text):
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"numtrans {command}: error:"), out.stderr
    assert text in lines[0], lines[0]


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("instruct")
    out = run(["sft", "--out", "sft", "--max-per-task", "40", "--steps", "120", "--batch-size",
               "8", "--lr", "3e-3", "--log-every", "60", *TINY], base)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return base


def test_sft_writes_a_chat_model(sft_dir):
    files = set(os.listdir(sft_dir / "sft"))
    assert {"config.json", "model.safetensors", "tokenizer.json", "training.json"} <= files
    tok = json.loads((sft_dir / "sft" / "tokenizer.json").read_text())
    assert {"<|user|>", "<|assistant|>", "<|end|>", "<|system|>"} <= set(tok["special_tokens"])
    record = json.loads((sft_dir / "sft" / "training.json").read_text())
    assert (
        record["loss_per"] == "token"
        and record["conversations"] == 80
        and record["last_loss"] < 0.6 * record["first_loss"]
    )


def test_chat_from_a_pipe_with_commands_and_a_long_context(sft_dir):
    lines = ["hello", "/system be brief", "/reset", "/bogus", "how are you " * 30, "and now?"]
    out = run(["chat", "--model", "sft", "--max-new-tokens", "12", "--seed", "0"], sft_dir,
              "\n".join(lines) + "\n")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == 3  # one answer line per message
    for note in ("system message set", "conversation reset", "unknown command /bogus",
                 "kept its last"):  # fmt: skip
        assert note in out.stderr
    assert "Traceback" not in out.stderr


def test_dpo_from_a_pairs_file_leaves_the_sft_model_alone(sft_dir):
    pairs = sft_dir / "pairs.jsonl"
    rows = [{"prompt": f"Translate into Chinese: {en}", "chosen": zh, "rejected": "negative"}
            for en, zh in [("I love you.", "我爱你。"), ("Thanks.", "谢谢。"),
                           ("Good morning.", "早上好。"), ("Go.", "走。")]]  # fmt: skip
    pairs.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    weights = (sft_dir / "sft" / "model.safetensors").read_bytes()
    out = run(["dpo", "--model", "sft", "--out", "dpo", "--pairs", "pairs.jsonl", "--steps", "4",
               "--batch-size", "3", "--lr", "1e-3", "--val-fraction", "0.25"], sft_dir)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "held-out (1 pairs) before:" in out.stdout and "after:" in out.stdout
    assert "step 4/4" in out.stdout and (sft_dir / "dpo" / "model.safetensors").is_file()
    assert (sft_dir / "sft" / "model.safetensors").read_bytes() == weights
    record = json.loads((sft_dir / "dpo" / "training.json").read_text())
    assert record["val_after"]["reward_margin"] > record["val_before"]["reward_margin"]


def test_dpo_with_lora_adapters_saves_a_plain_chat_model(sft_dir):
    pairs = sft_dir / "pairs_lora.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"say {w}", "chosen": w, "rejected": "no"})
                             + "\n" for w in ("yes", "maybe", "ok")))  # fmt: skip
    out = run(["dpo", "--model", "sft", "--out", "lora", "--pairs", "pairs_lora.jsonl",
               "--steps", "2", "--batch-size", "2", "--lr", "1e-3", "--lora", "2"], sft_dir)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "LoRA rank 2:" in out.stdout
    trained, total = (int(n.replace(",", "")) for n in
                      out.stdout.split("LoRA rank 2: ")[1].split(" parameters")[0].split(" of "))  # fmt: skip
    assert 0 < trained < total / 5
    config = json.loads((sft_dir / "lora" / "config.json").read_text())
    assert config["architecture"] == "GPT"  # merged: no adapter left in the saved model
    chat = run(["chat", "--model", "lora", "--max-new-tokens", "4"], sft_dir, "yes?\n")
    assert chat.returncode == 0, chat.stderr


def test_dpo_makes_pairs_from_the_models_own_samples(sft_dir):
    out = run(["dpo", "--model", "sft", "--out", "made", "--make-pairs", "16", "--steps", "2",
               "--batch-size", "2", "--max-new-tokens", "12"], sft_dir)  # fmt: skip
    assert out.returncode == 0, out.stderr
    made = (sft_dir / "made" / "pairs.jsonl").read_text().splitlines()
    assert made and f"made {len(made)} pairs from 16 Tatoeba training prompts" in out.stdout
    for row in map(json.loads, made):
        assert row["chosen_chrf"] > row["rejected_chrf"] and row["reference"]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"role": "user", "content": "hi"}', "line 1: messages must be a list"),
        ('[{"role": "bot", "content": "hi"}]', "line 1: message 0: unknown role 'bot'"),
        ('[{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]',
         "line 1: message 1: empty assistant turn"),
    ],
)  # fmt: skip
def test_sft_bad_chat_file(tmp_path, content, message):
    (tmp_path / "chats.jsonl").write_text(content + "\n")
    out = run(["sft", "--out", "m", "--data", "chats.jsonl", "--steps", "1", *TINY], tmp_path)
    one_error_line(out, "sft", message)


def test_dpo_pairs_without_a_shared_prompt(sft_dir):
    u = lambda q, a: [{"role": "user", "content": q}, {"role": "assistant", "content": a}]  # noqa: E731
    (sft_dir / "bad.jsonl").write_text(
        json.dumps({"chosen": u("hi", "a"), "rejected": u("yo", "b")})
    )
    out = run(["dpo", "--model", "sft", "--out", "x", "--pairs", "bad.jsonl"], sft_dir)
    one_error_line(out, "dpo", "bad.jsonl, line 1: chosen and rejected share no prompt")
    out = run(["dpo", "--model", "sft", "--out", "x", "--pairs", "bad.jsonl",
               "--val-fraction", "1.5"], sft_dir)  # fmt: skip
    one_error_line(out, "dpo", "--val-fraction must be in [0, 1), got 1.5")


def test_chat_bad_history_and_a_model_without_chat_tokens(sft_dir, tmp_path):
    (tmp_path / "h.json").write_text('{"role": "user"}')
    out = run(["chat", "--model", str(sft_dir / "sft"), "--history", "h.json"], tmp_path, "")
    one_error_line(out, "chat", "messages must be a list of role/content dicts")
    out = run(["chat", "--model", "nowhere"], tmp_path, "hi\n")
    one_error_line(out, "chat", "no tokenizer.json in nowhere")


def pretrain(model, tokenizer, texts, steps=150, T=48):
    """A few next-token steps on the texts (well under a second for this GPT)."""
    import numpy as np

    from numtrans.optim import AdamW

    ids = np.array([i for t in texts for i in tokenizer.encode(t + " ")])
    rng, opt = np.random.default_rng(0), AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - T - 1, size=16)
        x = np.stack([ids[s : s + T] for s in starts])
        y = np.stack([ids[s + 1 : s + T + 1] for s in starts])
        opt.zero_grad()
        model(x, y)[1].backward()
        opt.step()
    model.eval()


def sft_loss(model, tokenizer):
    """The masked SFT loss on the first 40 conversations of each bundled task, in one batch."""
    from numtrans.autograd import no_grad
    from numtrans.instruct import bucket_batches, instruction_set, sft_example

    conversations = instruction_set(seed=0, max_per_task=40)
    examples = [sft_example(c, tokenizer, model.config.block_size) for c in conversations]
    [(x, y)] = bucket_batches(examples, len(examples), pad_id=0)
    with no_grad():
        return model.eval()(x, y)[1].item()


def test_sft_with_lora_trains_attention_and_the_chat_rows_only(tmp_path):
    import numpy as np

    from numtrans import manual_seed
    from numtrans.instruct import instruction_set, prepare_model
    from numtrans.instruct.train import load_base_model
    from numtrans.models.gpt import GPT, GPTConfig
    from numtrans.tokenizers.bpe import ByteBPETokenizer

    texts = [m["content"] for conv in instruction_set(seed=0, max_per_task=40) for m in conv]
    tokenizer = ByteBPETokenizer.train(texts, 300)
    V = tokenizer.vocab_size  # before the chat tokens
    manual_seed(0)
    base = GPT(GPTConfig(block_size=96, vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2,
                         n_embd=32))  # fmt: skip
    pretrain(base, tokenizer, texts)  # a base that knows the words, not the chat format
    base.save_pretrained(str(tmp_path / "base"))
    tokenizer.save(str(tmp_path / "base" / "tokenizer.json"))
    out = run(["sft", "--model", "base", "--out", "lsft", "--lora", "4", "--max-per-task", "40",
               "--steps", "100", "--batch-size", "8", "--lr", "1e-2", "--log-every", "20"],
              tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lora = 4 * (32 + 96) + 4 * (32 + 32)  # one block: c_attn 32 -> 96, attn.c_proj 32 -> 32
    assert f"LoRA rank 4: {lora + 4 * 32:,} of " in out.stdout  # + 4 chat-token rows of 32
    record = json.loads((tmp_path / "lsft" / "training.json").read_text())
    assert record["lora_rank"] == 4
    tuned = GPT.from_pretrained(str(tmp_path / "lsft"))  # merged: a plain GPT
    grown, _ = load_base_model(str(tmp_path / "base"))
    prepare_model(grown, tokenizer)  # the base with the same tokens, before any training
    assert sft_loss(tuned, tokenizer) < 0.85 * sft_loss(grown, tokenizer)  # 2.55 vs 3.36 here
    assert tuned.config.vocab_size == V + 4
    before, after = base.state_dict(), tuned.state_dict()
    for name, value in after.items():
        if name in ("transformer.wte.weight", "lm_head.weight"):
            np.testing.assert_array_equal(value[:V], before[name])  # old rows frozen
            assert value[V:].std() > 0.06  # the chat rows trained away from their N(0, 0.02^2)
        elif name.endswith(("c_attn.weight", "attn.c_proj.weight")):
            assert np.abs(value - before[name]).max() > 1e-6  # the merged adapters
        else:
            np.testing.assert_array_equal(value, before[name], err_msg=name)
    chat = run(["chat", "--model", "lsft", "--max-new-tokens", "4"], tmp_path, "hi\n")
    assert chat.returncode == 0, chat.stderr
    out = run(["sft", "--out", "m", "--lora", "2", "--steps", "1", *TINY], tmp_path)
    one_error_line(out, "sft", "--lora adapts a pretrained base: give --model BASE_DIR")
