"""English -> Chinese translation: split, tokenizers, bucketed batches, training, saving,
translating, cross-attention maps and the two commands."""

import argparse
import json
import os

import numpy as np
import pytest

import numtrans as nt
from numtrans.data import load_corpus
from numtrans.recipes.translation import build, make_config, make_loss_fn, run
from numtrans.translation import (
    SPECIALS,
    BucketBatcher,
    Translator,
    make_tokenizers,
    reference_streams,
    split_pairs,
)
from numtrans.translation.data import make_dataset

TINY = {  # seconds: 150 short pairs, a 1+1 layer model
    "max_pairs": 150, "src_vocab_size": 300, "d_model": 32, "nhead": 2,
    "num_encoder_layers": 1, "num_decoder_layers": 1, "dim_feedforward": 64, "dropout": 0.0,
    "max_steps": 12, "warmup_steps": 4, "eval_interval": 6, "eval_batches": 1,
    "log_interval": 6, "progress": False, "bleu_sentences": 4,
}  # fmt: skip


@pytest.fixture(autouse=True)
def numpy_backend(monkeypatch):
    monkeypatch.setenv("NUMTRANS_BACKEND", "numpy")


@pytest.fixture(scope="module")
def tatoeba():
    return load_corpus("tatoeba")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("model"))
    return run(make_config("tiny", {**TINY, "out_dir": out}), say=lambda *a: None), out


def test_split_is_seeded_disjoint_and_complete(tatoeba):
    train, valid, test = split_pairs(tatoeba, 0.05, 0.05, seed=0)
    assert split_pairs(tatoeba, 0.05, 0.05, seed=0) == (train, valid, test)
    assert split_pairs(tatoeba, 0.05, 0.05, seed=1)[2] != test
    assert len(train) + len(valid) + len(test) == len(tatoeba)
    sources = [{s for s, _ in part} for part in (train, valid, test)]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    n_sources = len({r[0] for r in tatoeba})
    assert abs(len(sources[2]) - 0.05 * n_sources) <= 1
    assert sorted(train + valid + test) == sorted((r[0], r[1]) for r in tatoeba)
    with pytest.raises(ValueError, match="leave some data"):
        split_pairs(tatoeba, 0.5, 0.5)


def test_reference_streams_group_translations():
    pairs = [("Hi.", "嗨。"), ("Run.", "跑。"), ("Hi.", "你好。")]
    sources, streams = reference_streams(pairs)
    assert sources == ["Hi.", "Run."]
    assert streams == [["嗨。", "跑。"], ["你好。", None]]


def test_tokenizers_round_trip_and_share_special_ids(tatoeba):
    train, _, test = split_pairs(tatoeba[:400], 0.1, 0.1)
    src_tok, tgt_tok = make_tokenizers(train, src_vocab_size=400)
    for tok in (src_tok, tgt_tok):
        assert [tok.token_to_id(t) for t in SPECIALS] == [0, 1, 2, 3] and tok.pad_id == 0
    for en, zh in train[:50]:
        assert tgt_tok.decode(tgt_tok.encode(zh)) == zh
        assert len(tgt_tok.encode(zh)) == len(zh)  # one token per character
        assert src_tok.decode(src_tok.encode(en)) == en
    assert src_tok.decode(src_tok.encode("Zebras don't jump.")) == "Zebras don't jump."
    assert tgt_tok.encode("你好龘")[-1] == tgt_tok.unk_id  # an unseen character
    assert len(src_tok.encode("I am.")) < len("I am.")  # merges were learned


def test_bucketed_batches_fit_and_cover(tatoeba):
    pairs = tatoeba[:3000:5]
    src_tok, tgt_tok = make_tokenizers(pairs, src_vocab_size=300)
    ds = make_dataset(pairs, src_tok, tgt_tok, max_length=32)
    batcher = BucketBatcher({"train": ds}, max_tokens=300)
    batches = batcher.batches("train")
    seen = np.sort(np.concatenate(batches))
    np.testing.assert_array_equal(seen, np.arange(len(ds)))
    for idx in batches:
        src = max(len(ds[int(i)]["src_ids"]) for i in idx)
        tgt = max(len(ds[int(i)]["tgt_ids"]) for i in idx)
        assert len(idx) * (src + tgt) <= 300 or len(idx) == 1
    assert len(batches[0]) > 2 * len(batches[-1])  # short sentences come in larger batches
    a = batcher.get_batch("train", np.random.default_rng(3))
    b = batcher.get_batch("train", np.random.default_rng(3))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["src_ids"].size + a["tgt_ids"].size <= 300
    assert set(a) == {"src_ids", "src_mask", "tgt_ids", "tgt_mask", "labels"}
    real = a["tgt_mask"] == 1
    np.testing.assert_array_equal(
        a["labels"][:, :-1][real[:, 1:]], a["tgt_ids"][:, 1:][real[:, 1:]]
    )
    assert np.all(a["labels"][~real] == -100)
    lengths = (a["src_mask"].sum(1), a["tgt_mask"].sum(1))
    assert lengths[0].max() - lengths[0].min() <= 2  # neighbours in length order
    with pytest.raises(KeyError, match="unknown split"):
        batcher.get_batch("test", np.random.default_rng(0))


def test_a_few_steps_lower_the_loss(tatoeba):
    cfg = make_config("tiny", {**TINY, "max_pairs": 60})
    pairs = tatoeba[:60]
    src_tok, tgt_tok = make_tokenizers(pairs, src_vocab_size=300)
    batch = BucketBatcher({"train": make_dataset(pairs, src_tok, tgt_tok)}, 10**6).get_batch(
        "train", np.random.default_rng(0)
    )
    model, optimizer, scheduler = build(cfg, src_tok.vocab_size, tgt_tok.vocab_size)
    loss_fn = make_loss_fn(label_smoothing=0.1)
    model.eval()
    with nt.no_grad():
        before = loss_fn(model, batch).item()
    model.train()
    for _ in range(15):
        loss_fn(model, batch).backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    model.eval()
    with nt.no_grad():
        after = loss_fn(model, batch).item()
    assert after < before - 0.5, (before, after)


def test_run_saves_a_translator_that_round_trips(trained, tmp_path):
    result, out = trained
    for name in ("config.json", "model.safetensors", "src_tokenizer.json",
                 "tgt_tokenizer.json", "translation.json", "history.json"):  # fmt: skip
        assert os.path.isfile(os.path.join(out, name)), name
    settings = json.load(open(os.path.join(out, "translation.json"), encoding="utf-8"))
    assert settings["beam_size"] == 4 and settings["steps"] == 12
    assert set(result["bleu"]) == {"greedy", "beam 4"}
    assert 0 <= result["bleu"]["beam 4"]["bleu"].score <= 100
    loaded = Translator.load(out)
    texts = ["Hi.", "I see.", "Run!"]
    original = result["translator"]
    assert loaded.translate(texts) == original.translate(texts)
    assert loaded.translate(texts, beam_size=1) == original.translate(texts, beam_size=1)
    nbest = loaded.translate_nbest(texts, n_best=3, beam_size=3)
    assert [len(n) for n in nbest] == [3, 3, 3]
    assert all(n[0][1] >= n[1][1] >= n[2][1] for n in nbest)
    assert [n[0][0] for n in nbest] == loaded.translate(texts, beam_size=3)
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        Translator.load(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="translation.json"):
        Translator.load(str(tmp_path))


def test_cross_attention_map(trained, tmp_path):
    pytest.importorskip("matplotlib")
    translator = trained[0]["translator"]
    zh = trained[0]["splits"][0][5][1]  # a training target: every character is known
    amap = translator.attention("I see.", translation=zh)
    L, H = 1, 2
    assert amap.weights.shape == (L, H, len(zh) + 1, len(amap.source_tokens))
    assert amap.target_tokens == list(zh) + ["<eos>"] and amap.translation == zh
    assert amap.source_tokens[-1] == "<eos>" and "".join(amap.source_tokens[:-1]) == "Isee."
    np.testing.assert_allclose(amap.weights.sum(-1), 1.0, rtol=1e-5)
    fig = amap.plot(str(tmp_path / "attn.png"))
    assert os.path.getsize(tmp_path / "attn.png") > 0 and len(fig.axes) == H + 1  # + colorbar


def parser():
    from numtrans.commands.translate import register

    p = argparse.ArgumentParser(prog="numtrans")
    register(p.add_subparsers(dest="command", required=True))
    return p


def call(argv):
    args, extra = parser().parse_known_args(argv)
    return args.func(args, extra)


def test_translate_command(trained, capsys):
    out = trained[1]
    assert call(["translate", "--model", out, "Hi.", "I see."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == Translator.load(out).translate(["Hi.", "I see."])
    assert call(["translate", "--model", out, "--greedy", "Hi."]) == 0
    assert capsys.readouterr().out.splitlines() == Translator.load(out).translate(
        ["Hi."], beam_size=1
    )
    assert call(["translate", "--model", out, "--nbest", "2", "Hi."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(len(line.split("\t")) == 2 for line in lines)
    with pytest.raises(ValueError, match="contradict"):
        call(["translate", "--model", out, "--greedy", "--beam", "3", "Hi."])
    with pytest.raises(ValueError, match="--nbest"):
        call(["translate", "--model", out, "--nbest", "0", "Hi."])
    with pytest.raises(ValueError, match="nothing to translate"):
        call(["translate", "--model", out, " "])
    with pytest.raises(FileNotFoundError, match="no such model directory"):
        call(["translate", "--model", out + "-missing", "Hi."])
    with pytest.raises(SystemExit):
        parser().parse_args(["translate", "Hi."])  # --model is required


def test_train_translation_command(tmp_path, capsys):
    out = str(tmp_path / "m")
    args = parser().parse_known_args(
        ["train-translation", "--preset", "tiny", "--out-dir", out, "--max-steps", "2",
         "--max_pairs=60", "--d_model=16", "--dim_feedforward=32", "--bleu_sentences=0",
         "--no-progress"]
    )  # fmt: skip
    assert args[0].func(*args) == 0
    assert Translator.load(out).model.config.d_model == 16
    assert "trained 2 steps" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown setting"):
        call(["train-translation", "--preset", "tiny", "--dmodel=16"])
    with pytest.raises(ValueError, match="unknown preset"):
        call(["train-translation", "--preset", "huge"])


def test_translate_from_stdin_keeps_one_output_line_per_input_line(trained, capsys, monkeypatch):
    """Issue 14, item 12: blank input lines give blank output lines, so lines stay aligned."""
    import io

    out = trained[1]
    monkeypatch.setattr("sys.stdin", io.StringIO("Hi.\n\nI see.\n"))
    assert call(["translate", "--model", out, "-"]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]
    expected = Translator.load(out).translate(["Hi.", "I see."])
    assert lines == [expected[0], "", expected[1]]
