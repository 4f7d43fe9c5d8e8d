"""Issue 14, items 2, 7 and 8: resuming falls back past a damaged checkpoint, refuses a
checkpoint of another model or (unless --force) of another corpus, and a failed save says in one
line what was kept."""

import errno
import random

import pytest

from numtrans.recipes.pretrain import make_config, run

TINY = {
    "max_steps": 4,
    "n_layer": 1,
    "n_embd": 8,
    "n_head": 2,
    "block_size": 16,
    "batch_size": 4,
    "eval_interval": 2,
    "eval_batches": 1,
    "sample_tokens": 0,
    "progress": False,
}
QUIET = dict(say=lambda *a: None)


def corpus(path, seed):
    """A text file of 'abc ... ' words: every seed gives the same characters, other text."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefgh") for _ in range(5)) for _ in range(800)]
    path.write_text("abcdefgh \n" + " ".join(words) + "\n")
    return str(path)


@pytest.fixture
def trained(tmp_path):
    """A finished 4-step run with checkpoints at steps 2 and 4."""
    data = corpus(tmp_path / "a.txt", 0)
    out = tmp_path / "run"
    settings = {**TINY, "data": data, "out_dir": str(out)}
    run(make_config("quick", settings), **QUIET)
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == [
        "step-000002",
        "step-000004",
    ]
    return settings, out


def test_resume_skips_a_damaged_latest_checkpoint(trained):
    settings, out = trained
    weights = out / "checkpoints" / "step-000004" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    said = []
    run(make_config("quick", {**settings, "max_steps": 6}), resume=True, say=said.append)
    skipped = [s for s in said if s.startswith("skipped checkpoint")]
    assert (
        len(skipped) == 1 and "step-000004" in skipped[0] and "damaged or truncated" in skipped[0]
    )
    assert "resumed from step 2" in said


def test_resume_with_no_loadable_checkpoint_is_one_line(trained, capsys):
    from numtrans.cli import main

    settings, out = trained
    for step in ("step-000002", "step-000004"):
        (out / "checkpoints" / step / "state.json").write_text("{ no json")
    argv = ["pretrain", "--no-progress", "--resume", "--data", settings["data"], "--out-dir",
            str(out), "--n_layer=1", "--n_embd=8", "--n_head=2", "--block_size=16"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint in" in err[0] and "state.json is damaged" in err[0]


def test_resume_refuses_another_model(trained):
    settings, _ = trained
    with pytest.raises(ValueError, match="holds another model .*n_embd 8 there, 16 now"):
        run(make_config("quick", {**settings, "n_embd": 16, "max_steps": 6}), resume=True, **QUIET)


def test_resume_refuses_another_corpus_unless_forced(trained, tmp_path, capsys):
    from numtrans.cli import main

    settings, out = trained
    other = corpus(tmp_path / "b.txt", 1)  # the same 10 characters, another text
    cfg = make_config("quick", {**settings, "data": other, "max_steps": 6})
    with pytest.raises(ValueError, match="trained on other data .*pass --force"):
        run(cfg, resume=True, **QUIET)
    argv = ["pretrain", "--no-progress", "--resume", "--data", other, "--out-dir", str(out),
            "--n_layer=1", "--n_embd=8", "--n_head=2", "--block_size=16", "--batch_size=4",
            "--max-steps", "6"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0]
    said = []
    run(cfg, resume=True, force=True, say=said.append)
    assert "resumed from step 4" in said
    with pytest.raises(ValueError, match="--force only applies with --resume"):
        run(cfg, force=True, overwrite=True, **QUIET)


def test_same_corpus_resumes(trained):
    settings, _ = trained
    result = run(make_config("quick", {**settings, "max_steps": 6}), resume=True, **QUIET)
    assert result["steps"] == 6


def test_a_failed_checkpoint_save_says_what_is_kept(trained, monkeypatch):
    import numtrans.training.checkpoint as ckpt

    settings, out = trained

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "_save_arrays", full_disk)
    with pytest.raises(OSError) as info:
        run(make_config("quick", {**settings, "max_steps": 6}), resume=True, **QUIET)
    msg = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert "could not write the step-6 checkpoint" in msg and "No space left" in msg
    assert "step-000004 is kept" in msg
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]


def test_a_failed_model_save_is_one_line_naming_the_checkpoint(tmp_path, monkeypatch, capsys):
    from numtrans.cli import main
    from numtrans.models.gpt import GPT

    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(GPT, "save_pretrained", full_disk)
    out = tmp_path / "run"
    argv = ["pretrain", "--no-progress", "--data", corpus(tmp_path / "a.txt", 0), "--out-dir",
            str(out), "--n_layer=1", "--n_embd=8", "--n_head=2", "--block_size=16",
            "--batch_size=4", "--eval_interval=2", "--eval_batches=1", "--sample_tokens=0",
            "--max-steps", "2"]  # fmt: skip
    assert main(argv) == 1  # a runtime failure, not bad input
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not save the model" in err[0]
    assert "step-000002 is kept (--resume continues from it)" in err[0]


def test_generate_refuses_a_tokenizer_of_another_model(tmp_path, capsys):
    """Item 12: a tokenizer/model vocabulary mismatch is found at load, not mid-sample."""
    from numtrans.cli import main
    from numtrans.models.gpt import GPT, GPTConfig
    from numtrans.tokenizers import CharTokenizer

    GPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8)).save_pretrained(
        tmp_path
    )
    CharTokenizer.from_text("abcde").save(str(tmp_path / "tokenizer.json"))  # 5 tokens, not 7
    assert main(["generate", "--model", str(tmp_path), "--max-new-tokens", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has 5 tokens but the model" in err[0] and "vocab_size=7" in err[0]
    CharTokenizer.from_text("abcdefg").save(str(tmp_path / "tokenizer.json"))
    assert main(["generate", "--model", str(tmp_path), "--max-new-tokens", "3", "--seed", "0"]) == 0
