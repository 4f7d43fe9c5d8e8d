"""Issue 14 (items 1 and 6, pretraining): bad settings and bad output paths are found before any
work starts, with one line naming the field, the value and what is allowed — on the command line
(a real subprocess), in a config file and in the Python API alike."""

import json
import os
import subprocess
import sys

import pytest

from numtrans.recipes.pretrain import make_config

# a run small enough to finish in about a second
TINY = {
    "max_steps": 2,
    "n_layer": 1,
    "n_embd": 8,
    "n_head": 2,
    "eval_interval": 2,
    "eval_batches": 1,
    "sample_tokens": 0,
    "progress": False,
}


def run_cli(*args, cwd=None):
    # cwd: not the repository root, whose source tree (no compiled modules) would shadow the
    # installed package under `python -m` and add its warning to stderr
    cwd = cwd or os.path.dirname(os.path.abspath(__file__)) + "/fixtures"
    env = dict(os.environ, NUMTRANS_BACKEND="numpy")
    proc = subprocess.run(
        [sys.executable, "-m", "numtrans.cli", "pretrain", "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )
    return proc.returncode, proc.stderr


@pytest.mark.parametrize(
    "setting, words",
    [
        ("--eval_interval=0", "eval_interval=0"),
        ("--log_interval=0", "log_interval=0"),
        ("--grad_accum_steps=0", "grad_accum_steps=0"),
        ("--batch_size=0", "batch_size=0"),
        ("--val_fraction=1.5", "val_fraction=1.5"),
        ("--learning_rate=abc", "learning_rate='abc'"),
        ("--n_head=3", "divisible by n_head=3"),
    ],
)
def test_bad_setting_is_one_line_before_training(setting, words, tmp_path):
    code, err = run_cli(setting, "--out-dir", str(tmp_path / "run"))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert words in lines[0]
    assert not (tmp_path / "run").exists()  # nothing was written


def test_out_dir_that_is_a_file_is_refused_before_training(tmp_path):
    target = tmp_path / "a_file"
    target.write_text("x")
    code, err = run_cli("--out-dir", str(target), "--max-steps", "2")
    assert code == 2 and "is not a directory" in err and len(err.strip().splitlines()) == 1


def test_config_file_errors_name_the_file(tmp_path):
    as_list = tmp_path / "list.json"
    as_list.write_text("[1, 2]")
    with pytest.raises(ValueError, match="list.json: a config file must be a JSON object"):
        make_config("quick", None, str(as_list))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        make_config("quick", None, str(broken))
    nulls = tmp_path / "nulls.json"
    nulls.write_text(json.dumps({"batch_size": None}))
    with pytest.raises(ValueError, match="batch_size=None is invalid"):
        make_config("quick", None, str(nulls))
    text = tmp_path / "text.json"
    text.write_text(json.dumps({"n_layer": "four"}))
    with pytest.raises(ValueError, match="n_layer='four' is invalid"):
        make_config("quick", None, str(text))


def test_python_api_validates_the_same_way(tmp_path):
    with pytest.raises(ValueError, match="max_steps=-3"):
        make_config("quick", {"max_steps": -3, "out_dir": str(tmp_path)})
    cfg = make_config("quick", {"max_steps": 3, "out_dir": str(tmp_path / "ok")})
    assert cfg.max_steps == 3


def test_stale_temporaries_of_a_killed_run_are_removed_at_start(tmp_path):
    """Issue 14, item 11: SIGKILL leftovers (.step-NNNNNN.* dirs, .latest.*.tmp) are cleaned."""
    from numtrans.recipes.pretrain import run

    out = tmp_path / "run"
    ckpt = out / "checkpoints"
    (ckpt / ".step-000002.abcd").mkdir(parents=True)
    (ckpt / ".step-000002.abcd" / "model.safetensors").write_bytes(b"partial")
    (ckpt / ".latest.x1.tmp").write_text("step-0000")
    (out / ".tokenizer.json.zz.tmp").write_text("{")
    said = []
    cfg = make_config("quick", {**TINY, "out_dir": str(out)})
    run(cfg, say=said.append)
    assert any("removed 3 temporary" in s for s in said), said
    leftovers = [
        p.name for p in list(out.iterdir()) + list(ckpt.iterdir()) if p.name.startswith(".")
    ]
    assert leftovers == []


def test_a_fresh_run_into_an_earlier_run_is_refused_unless_asked(tmp_path):
    """Issue 14, item 4: --resume continues, --overwrite replaces, nothing else touches it."""
    from numtrans.recipes.pretrain import run

    out = tmp_path / "run"
    tiny = {**TINY, "out_dir": str(out)}
    run(make_config("quick", tiny), say=lambda *a: None)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="holds an earlier run"):
        run(make_config("quick", tiny), say=lambda *a: None)
    assert (out / "model.safetensors").read_bytes() == before
    code, err = run_cli("--out-dir", str(out), "--max-steps", "2")
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    run(make_config("quick", {**tiny, "seed": 7}), say=lambda *a: None, overwrite=True)
    assert (out / "model.safetensors").read_bytes() != before
