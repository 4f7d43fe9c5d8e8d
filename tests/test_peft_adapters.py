"""LoRA with a task head (``modules_to_save``) and several task adapters on one MiniLM-shaped
base: what trains, what is saved, what switching changes, and the bases an adapter refuses."""

import copy

import numpy as np
import pytest

from numtrans import manual_seed, nn
from numtrans.models.bert import BertConfig
from numtrans.models.bert_heads import BertForSequenceClassification
from numtrans.peft import (
    LoRALinear,
    adapter_labels,
    apply_lora,
    load_adapter,
    merge_and_unload,
    read_adapter_config,
    save_adapter,
    set_adapter,
    set_labels,
    task_head,
    trainable_parameters,
)

IDS = np.array([[2, 7, 9, 4, 3], [2, 5, 6, 3, 0]])
MASK = (IDS != 0).astype(np.int64)


def classifier(seed=0, hidden=16, layers=2, heads=2, inter=32, labels=2, vocab=50):
    manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=inter, num_labels=labels,
                     max_position_embeddings=16, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)  # fmt: skip
    return BertForSequenceClassification(cfg).double().eval()


def logits(model):
    return model(IDS, attention_mask=MASK).logits.numpy()


def perturb(model, seed):
    """Random B's and a random head: what training one task would have made of the adapter."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, LoRALinear) and m.has_active:
            m.lora_B.data[...] = rng.normal(scale=0.5, size=m.lora_B.shape)
    model.classifier.weight.data[...] = rng.normal(size=model.classifier.weight.shape)
    model.classifier.bias.data[...] = rng.normal(size=model.classifier.bias.shape)


def test_head_trains_under_lora_marking_and_is_saved(tmp_path):
    model = classifier()
    apply_lora(model, r=2, alpha=4, modules_to_save=("classifier",))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n in trainable if "lora_" in n} | {
        "classifier.weight",
        "classifier.bias",
    }
    assert "classifier.weight" in trainable and "bert.pooler.dense.weight" not in trainable
    lora = 2 * 4 * 2 * (16 + 16)  # layers x targets x r x (in + out)
    assert trainable_parameters(model)[0] == lora + 16 * 2 + 2
    out = model(IDS, attention_mask=MASK, labels=np.array([0, 1]))
    out.loss.backward()
    assert np.abs(model.classifier.weight.grad).max() > 0
    assert model.bert.pooler.dense.weight.grad is None

    perturb(model, 1)
    expected = logits(model)
    save_adapter(model, str(tmp_path / "a"))
    config = read_adapter_config(str(tmp_path / "a"))
    assert config["modules_to_save"] == ["classifier"]
    assert config["saved_shapes"]["classifier.weight"] == [2, 16]
    fresh = classifier(seed=0)
    fresh.classifier.weight.data[...] = 0.0  # the saved head must replace it
    load_adapter(fresh, str(tmp_path / "a"))
    np.testing.assert_allclose(logits(fresh), expected, atol=1e-10)
    merge_and_unload(fresh)
    assert not any("lora_" in k for k in fresh.state_dict())
    np.testing.assert_allclose(logits(fresh), expected, atol=1e-10)


def test_adapter_brings_its_head_and_refuses_one_that_cannot_fit(tmp_path):
    model = classifier()
    apply_lora(model, r=2, alpha=4, modules_to_save=("classifier",))
    perturb(model, 3)
    expected = logits(model)
    save_adapter(model, str(tmp_path / "a"))
    three = classifier(labels=3)  # a base whose own head has 3 classes takes the 2-class head
    load_adapter(three, str(tmp_path / "a"))
    np.testing.assert_allclose(logits(three), expected, atol=1e-10)
    assert three.num_labels == three.config.num_labels == 2
    own_head = three.__dict__["peft_original_modules"]["classifier"]
    apply_lora(three, r=2, alpha=4, adapter_name="bare")  # no head of its own: the base's
    assert three.classifier is own_head and three.num_labels == 3 and logits(three).shape == (2, 3)

    other = classifier()
    other.classifier = nn.Linear(8, 2).double()  # a head reading 8 features cannot take 16
    before = {k: v.copy() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match=r"another base: classifier.weight is \[2, 8\] here"):
        load_adapter(other, str(tmp_path / "a"))
    assert not any(isinstance(m, LoRALinear) for m in other.modules())  # refused untouched
    assert all(np.array_equal(v, before[k]) for k, v in other.state_dict().items())
    with pytest.raises(ValueError, match="match no module"):
        apply_lora(classifier(), modules_to_save=("no_such_head",))


TOPICS = "Company School Artist Athlete Politician Transport Building Nature Village Animal " \
         "Plant Album Film Book".split()  # fmt: skip


def test_two_task_adapters_with_their_own_heads_on_one_minilm_shaped_base(tmp_path):
    """MiniLM-L6's shapes (6 layers, 384 wide, 12 heads, 1536 feed-forward; a short vocabulary):
    a 2-class sentiment adapter and a 14-class DBpedia-topics adapter, each with its own head
    and class names, loaded on one base and switched back and forth without reloading it."""
    shape = dict(hidden=384, layers=6, heads=12, inter=1536, vocab=64)
    model = classifier(**shape)
    outputs = {}
    apply_lora(model, r=8, alpha=16, adapter_name="sentiment", modules_to_save=("classifier",))
    set_labels(model, ["negative", "positive"])
    perturb(model, 1)
    outputs["sentiment"] = logits(model)
    save_adapter(model, str(tmp_path / "sentiment"))
    apply_lora(model, r=8, alpha=16, adapter_name="topics", modules_to_save=("classifier",))
    task_head(model, 14, TOPICS)
    perturb(model, 2)
    outputs["topics"] = logits(model)
    save_adapter(model, str(tmp_path / "topics"))
    assert outputs["sentiment"].shape == (2, 2) and outputs["topics"].shape == (2, 14)
    assert read_adapter_config(str(tmp_path / "topics"))["labels"] == TOPICS

    base = classifier(**shape)  # a 2-class base head; the topics adapter brings its 14
    query = base.bert.encoder.layer[0].attention.self.query
    weight, weight_values = query.weight, query.weight.data.copy()
    for task in outputs:
        load_adapter(base, str(tmp_path / task), name=task)
    for task in ("sentiment", "topics", "sentiment", "topics"):
        set_adapter(base, task)
        np.testing.assert_allclose(logits(base), outputs[task], atol=1e-9)
        assert base.num_labels == base.config.num_labels == outputs[task].shape[1]
    assert adapter_labels(base) == TOPICS and adapter_labels(base, "sentiment")[0] == "negative"
    layer = base.bert.encoder.layer[0].attention.self.query
    assert layer.weight is weight and np.array_equal(layer.weight.data, weight_values)

    out = base(IDS, attention_mask=MASK, labels=np.array([3, 13]))  # trains topics' head only
    out.loss.backward()
    assert (
        base.classifier.weight.shape == (14, 384) and np.abs(base.classifier.weight.grad).max() > 0
    )
    set_adapter(base, "sentiment")
    assert base.classifier.weight.shape == (2, 384) and base.classifier.weight.grad is None
    with pytest.raises(ValueError, match="no adapter 'nope'"):
        set_adapter(base, "nope")


def test_double_casts_every_adapter_and_head_copy():
    model = classifier().float()
    apply_lora(model, r=2, alpha=4, adapter_name="a", modules_to_save=("classifier",))
    perturb(model, 1)
    apply_lora(model, r=2, alpha=4, adapter_name="b", target_modules=("query",),
               modules_to_save=("classifier",))  # fmt: skip
    task_head(model, 5)
    perturb(model, 2)
    expected = {}
    for name in ("a", "b"):
        set_adapter(model, name)
        expected[name] = logits(model)
        assert expected[name].dtype == np.float32
    model.double()  # adapter "b" is active: "a"'s pairs and head are kept aside
    arrays = [p for m in model.modules() if isinstance(m, LoRALinear) for p in m.parameters_aside()]
    arrays += list(model.parameters_aside())
    assert len(arrays) > 2 * 8 and all(p.dtype == np.float64 for p in arrays)
    for name in ("a", "b", "a"):
        set_adapter(model, name)
        got = logits(model)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, expected[name], rtol=1e-4, atol=1e-5)
    copy.deepcopy(model).float()  # a copy casts its own heads, not the original's
    assert all(p.dtype == np.float64 for p in model.parameters_aside())
