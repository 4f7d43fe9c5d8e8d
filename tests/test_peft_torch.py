"""A whole BERT classifier with LoRA in numtrans and in ``peft`` (torch + transformers): the same
base weights and adapter weights give the same logits, loss and gradients to 1e-6 in float64.

The base is a small random-weight BERT written by ``export_hf`` and read by ``transformers``;
LoRA on q/k/v and the attention output (r = 4, alpha = 8), the classifier in
``modules_to_save``. ``peft`` draws A (kaiming-uniform) and the test draws B and the head; both
are copied into numtrans, then the two libraries' gradients of the loss are compared entry by
entry for every trained tensor.
"""

from __future__ import annotations

import numpy as np
import pytest

from numtrans.models.bert import BertConfig
from numtrans.models.bert_heads import BertForSequenceClassification
from numtrans.models.hf import export_hf
from numtrans.peft import LoRALinear, apply_lora

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

TARGETS = ["query", "key", "value", "attention.output.dense"]
PREFIX = "base_model.model."


def build_pair(tmp_path):
    rng = np.random.default_rng(0)
    cfg = BertConfig(vocab_size=60, hidden_size=24, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=32, num_labels=3,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # fmt: skip
    ours = BertForSequenceClassification(cfg).double()
    for p in ours.parameters():  # non-trivial everywhere: zero biases would hide mistakes
        p.data[...] = rng.normal(0, 0.2, size=p.shape)
    export_hf(ours, tmp_path)
    hf = transformers.BertForSequenceClassification.from_pretrained(
        tmp_path, torch_dtype=torch.float64, attn_implementation="eager"
    )
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS,
                             modules_to_save=["classifier"])  # fmt: skip
    theirs = peft.get_peft_model(hf, config).train()
    apply_lora(ours, r=4, alpha=8, target_modules=TARGETS, modules_to_save=("classifier",))
    layers = {n: m for n, m in ours.named_modules() if isinstance(m, LoRALinear)}
    with torch.no_grad():
        for name, module in theirs.named_modules():
            if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
                B = module.lora_B["default"].weight
                B.copy_(torch.from_numpy(rng.normal(0, 0.3, size=tuple(B.shape))))
                ours_layer = layers.pop(name.removeprefix(PREFIX))
                ours_layer.lora_A.data[...] = module.lora_A["default"].weight.numpy()
                ours_layer.lora_B.data[...] = B.numpy()
        head = theirs.base_model.model.classifier.modules_to_save["default"]
        for p_name in ("weight", "bias"):
            value = rng.normal(0, 0.3, size=tuple(getattr(head, p_name).shape))
            getattr(head, p_name).copy_(torch.from_numpy(value))
            getattr(ours.classifier, p_name).data[...] = value
    assert not layers, f"peft adapted no {sorted(layers)}"
    return ours.train(), theirs


def trained_grads_of_peft(model) -> dict:
    """numtrans names -> gradients, for peft's trainable tensors."""
    out = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        name = name.removeprefix(PREFIX).replace(
            "classifier.modules_to_save.default.", "classifier."
        )
        name = name.replace(".default.weight", "")
        out[name] = p.grad.numpy()
    return out


def test_whole_bert_matches_peft(tmp_path):
    ours, theirs = build_pair(tmp_path)
    rng = np.random.default_rng(1)
    ids = rng.integers(1, 60, size=(3, 9))
    mask = np.ones_like(ids)
    mask[1, 6:] = 0  # a padded row
    ids[mask == 0] = 0
    labels = np.array([0, 2, 1])

    out_t = theirs(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                   labels=torch.from_numpy(labels))  # fmt: skip
    out_t.loss.backward()
    out = ours(ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    np.testing.assert_allclose(out.logits.numpy(), out_t.logits.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(out.loss.item(), out_t.loss.item(), atol=1e-6)

    grads_t = trained_grads_of_peft(theirs)
    grads = {n: p.grad for n, p in ours.named_parameters() if p.requires_grad}
    assert set(grads) == set(grads_t)
    assert len(grads) == 2 * 4 * 2 + 2  # layers x targets x (A, B), and the head's two
    for name, grad in grads.items():
        assert np.abs(grad).max() > 1e-6, f"{name}: no gradient reached it"
        np.testing.assert_allclose(grad, grads_t[name], atol=1e-6, err_msg=name)
    counts = theirs.get_nb_trainable_parameters()[0]
    assert counts == sum(p.size for p in grads.values())
