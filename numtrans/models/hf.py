"""Hugging Face checkpoints in and out: BERT-family and GPT-2 weights, no torch needed.

**In.** A Hugging Face model directory holds ``config.json`` (with ``"model_type"``),
``model.safetensors`` and, for BERT, ``vocab.txt``. ``BertModel.from_pretrained(dir)`` notices
the ``model_type`` and comes here::

    model = BertModel.from_pretrained("all-MiniLM-L6-v2/")     # (B, T) ids -> (B, T, 384)
    tok = WordPieceTokenizer.from_pretrained("all-MiniLM-L6-v2/")

numtrans's BERT already uses Hugging Face's parameter names (``encoder.layer.0.attention.self.
query.weight`` ...), so loading is mostly renaming at the edges:

* ``bert.`` prefix: task checkpoints (``BertForMaskedLM``) keep the encoder under ``bert.``;
  a bare ``BertModel`` checkpoint has no prefix. It is added or removed to fit the class loaded.
* ``embeddings.position_ids`` is a buffer (0..511), not a weight: dropped.
* old TensorFlow-converted files name LayerNorm parameters ``gamma``/``beta``: renamed.
* head weights the checkpoint lacks (a new classifier) are freshly initialised, with a warning.

GPT-2 (``model_type: "gpt2"``) loads into ``GPT``. Its ``Conv1D`` layers store weights as
(in, out), the transpose of ``Linear``'s (out, in): ``c_attn``, ``c_proj`` and ``c_fc`` are
transposed on the way in and on the way out.

**Out.** ``export_hf(model, dir)`` writes what ``transformers`` loads with ``from_pretrained``:
``GPT`` as ``GPT2LMHeadModel``, ``GPTForSequenceClassification`` as
``GPT2ForSequenceClassification``, and ``BertModel``/``BertForMaskedLM``/
``BertForSequenceClassification`` under their own names. Same weights, same logits.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings

import numpy as np
from safetensors.numpy import load_file, save_file

from ..io import atomic_write, read_json_object
from .files import CONFIG_NAME, WEIGHTS_NAME, unique_state

# This module imports no model class: ``PretrainedMixin.from_pretrained`` hands it the class to
# build (``cls`` and its ``config_class``), so bert.py / gpt.py -> pretrained.py -> hf.py has no
# cycle back.

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
BERT_BODY = ("embeddings.", "encoder.", "pooler.")
# BertConfig fields that Hugging Face's BertConfig also has (same name, same meaning)
BERT_FIELDS = (
    "vocab_size hidden_size num_hidden_layers num_attention_heads intermediate_size hidden_act "
    "hidden_dropout_prob attention_probs_dropout_prob max_position_embeddings type_vocab_size "
    "initializer_range layer_norm_eps pad_token_id problem_type classifier_dropout"
).split()


def read_hf_config(directory: str) -> dict:
    path = os.path.join(directory, CONFIG_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"missing {CONFIG_NAME} in {directory!r}")
    return read_json_object(path, "expected a JSON object")


def read_hf_weights(directory: str) -> dict:
    """name -> np.ndarray from ``model.safetensors`` (PyTorch pickles are refused)."""

    path = os.path.join(directory, WEIGHTS_NAME)
    if not os.path.isfile(path):
        found = [
            f for f in ("pytorch_model.bin", "tf_model.h5") if os.path.isfile(f"{directory}/{f}")
        ]
        hint = f" (found {found[0]}: pickled weights are not loaded; convert to safetensors)"
        raise FileNotFoundError(
            f"missing {WEIGHTS_NAME} in {directory!r}" + (hint if found else "")
        )
    return load_file(path)


# ----------------------------------------------------------------------------- configs
def bert_config_from_hf(hf: dict, config_class):
    """numtrans's ``BertConfig`` (``config_class``) from a Hugging Face BERT config dict."""

    kind = hf.get("position_embedding_type", "absolute")
    if kind != "absolute":
        raise ValueError(f"position_embedding_type {kind!r} is not supported (only 'absolute')")
    values = {k: hf[k] for k in BERT_FIELDS if hf.get(k) is not None}
    if "id2label" in hf:
        values["num_labels"] = len(hf["id2label"])
    values["classifier_pooling"] = hf.get("classifier_pooling", "pooled")
    return config_class(**values)


def bert_config_to_hf(config, architecture: str) -> dict:
    hf = {k: getattr(config, k) for k in BERT_FIELDS}
    hf.update(model_type="bert", architectures=[architecture], position_embedding_type="absolute")
    if architecture == "BertForSequenceClassification":
        hf["id2label"] = {str(i): f"LABEL_{i}" for i in range(config.num_labels)}
        hf["label2id"] = {f"LABEL_{i}": i for i in range(config.num_labels)}
    return hf


def gpt_config_from_hf(hf: dict, config_class):
    """``config_class`` (``GPTConfig`` or a classifier's config) from a Hugging Face GPT-2 dict."""

    inner = hf.get("n_inner")
    if inner is not None and inner != 4 * hf["n_embd"]:
        raise ValueError(f"n_inner {inner} != 4 * n_embd is not supported")
    act = hf.get("activation_function", "gelu_new")
    if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"activation_function {act!r} is not supported")
    values = dict(
        block_size=hf["n_positions"],
        vocab_size=hf["vocab_size"],
        n_layer=hf["n_layer"],
        n_head=hf["n_head"],
        n_embd=hf["n_embd"],
        dropout=hf.get("resid_pdrop", 0.0),
        tie_weights=hf.get("tie_word_embeddings", True),
        gelu_approximate="none" if act == "gelu" else "tanh",
        layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
    )
    if "num_labels" in {f.name for f in dataclasses.fields(config_class)}:
        values["num_labels"] = len(hf.get("id2label", {0: 0, 1: 1}))
        values["pad_token_id"] = hf.get("pad_token_id")
        values["problem_type"] = hf.get("problem_type")
    return config_class(**values)


def gpt_config_to_hf(config, architecture: str) -> dict:
    if config.pos != "learned" or not config.bias:
        raise ValueError(
            "GPT-2 has learned positions and biases: export needs pos='learned', bias=True"
        )
    hf = dict(
        model_type="gpt2",
        architectures=[architecture],
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_inner=None,
        activation_function="gelu" if config.gelu_approximate == "none" else "gelu_new",
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        layer_norm_epsilon=config.layer_norm_eps,
        initializer_range=0.02,
        tie_word_embeddings=config.tie_weights,
        bos_token_id=None,
        eos_token_id=None,
    )
    if architecture == "GPT2ForSequenceClassification":
        hf["id2label"] = {str(i): f"LABEL_{i}" for i in range(config.num_labels)}
        hf["label2id"] = {f"LABEL_{i}": i for i in range(config.num_labels)}
        hf["pad_token_id"] = config.pad_token_id
        hf["problem_type"] = config.problem_type
    return hf


# ----------------------------------------------------------------------------- weight names
def bert_names_from_hf(tensors: dict, prefixed: bool) -> dict:
    """Rename a Hugging Face BERT state: gamma/beta, position_ids, the ``bert.`` prefix.

    ``prefixed``: the target class keeps its encoder under ``bert.`` (the task heads)."""
    out = {}
    for name, value in tensors.items():
        if name.endswith("position_ids"):
            continue
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight")
        name = name.replace("LayerNorm.beta", "LayerNorm.bias")
        if prefixed and name.startswith(BERT_BODY):
            name = "bert." + name
        elif not prefixed:
            name = name.removeprefix("bert.")
        out[name] = value
    return out


def gpt_names_from_hf(tensors: dict) -> dict:
    """GPT-2 -> numtrans: add the ``transformer.`` prefix, transpose Conv1D, drop mask buffers."""
    out = {}
    for name, value in tensors.items():
        if name.endswith(("attn.bias", "attn.masked_bias")) and value.ndim == 4:
            continue  # the causal-mask buffer of older transformers versions
        if not name.startswith(("transformer.", "lm_head.", "score.")):
            name = "transformer." + name
        out[name] = value.T.copy() if name.endswith(CONV1D) else value
    return out


def gpt_names_to_hf(state: dict, tied: bool) -> dict:
    """numtrans -> GPT-2: transpose Conv1D weights; a tied lm_head is left to transformers."""
    out = {}
    for name, value in state.items():
        if name == "lm_head.weight" and tied:
            continue
        out[name] = np.ascontiguousarray(value.T) if name.endswith(CONV1D) else value
    return out


# ----------------------------------------------------------------------------- loading
def load_hf_pretrained(cls, directory: str):
    """Build ``cls`` from a Hugging Face directory (``PretrainedMixin.from_pretrained`` calls this)."""

    hf = read_hf_config(directory)
    kind = hf.get("model_type")
    families = {"bert": "Bert", "gpt2": "GPT"}
    if kind not in families:
        raise ValueError(f"{directory!r}: model_type {kind!r} is not supported (bert or gpt2)")
    if not cls.__name__.startswith(families[kind]):
        raise ValueError(
            f"{directory!r} holds a {kind} model, which cannot load into {cls.__name__}"
        )
    tensors = read_hf_weights(directory)
    if kind == "bert":
        config = bert_config_from_hf(hf, cls.config_class)
        # the bare encoder keeps its tensors at the top level; every head class under ``bert.``
        bare = cls.__name__ == "BertModel"
        tensors = bert_names_from_hf(tensors, prefixed=not bare)
        if bare:
            model = cls(config, add_pooling_layer="pooler.dense.weight" in tensors)
        else:
            model = cls(config)
    else:
        config = gpt_config_from_hf(hf, cls.config_class)
        tensors = gpt_names_from_hf(tensors)
        model = cls(config)
    return fill_model(model, tensors, directory)


def fill_model(model, tensors: dict, source: str):
    """Copy ``tensors`` into ``model``: body tensors must all be there; head tensors may be new."""
    groups = {}  # id -> names: a tied parameter is satisfied by any of its names
    for name, value in model._state_items():
        groups.setdefault(id(value), []).append(name)
    missing = [names[0] for names in groups.values() if not any(n in tensors for n in names)]
    heads = ("classifier.", "score.", "cls.", "lm_head.", "qa_outputs.")
    body_missing = [n for n in missing if not n.startswith(heads)]
    if body_missing:
        raise ValueError(f"{source}: the checkpoint lacks {body_missing}")
    if missing:
        warnings.warn(
            f"{type(model).__name__}: newly initialised (not in {source}): {missing}",
            stacklevel=3,
        )
    expected = {n for names in groups.values() for n in names}
    unused = sorted(set(tensors) - expected)
    if unused:
        warnings.warn(
            f"{type(model).__name__}: ignored tensors of {source}: {unused}", stacklevel=3
        )
    floats = [a.dtype for a in tensors.values() if np.issubdtype(a.dtype, np.floating)]
    if floats:
        model.to(floats[0])
    model.load_state_dict({k: v for k, v in tensors.items() if k in expected}, strict=False)
    model.eval()
    return model


# ----------------------------------------------------------------------------- export
def export_hf(model, directory: str) -> None:
    """Write ``config.json`` + ``model.safetensors`` that ``transformers`` loads directly."""

    name = type(model).__name__
    state = unique_state(model)
    if name in ("GPT", "GPTForSequenceClassification"):
        arch = "GPT2LMHeadModel" if name == "GPT" else "GPT2ForSequenceClassification"
        hf = gpt_config_to_hf(model.config, arch)
        state = gpt_names_to_hf(state, tied=model.config.tie_weights)
    elif name in ("BertModel", "BertForMaskedLM", "BertForSequenceClassification"):
        if name == "BertForSequenceClassification" and model.config.classifier_pooling != "pooled":
            raise ValueError(
                "transformers' BertForSequenceClassification reads the pooler output; this model "
                f"uses classifier_pooling={model.config.classifier_pooling!r}: export model.bert"
            )
        hf = bert_config_to_hf(model.config, name)
        state.pop("cls.predictions.decoder.weight", None)  # tied to the word embeddings
    else:
        raise TypeError(f"cannot export a {name} (GPT, GPT classifier or BERT models only)")
    os.makedirs(directory, exist_ok=True)
    text = json.dumps(hf, indent=2, sort_keys=True) + "\n"
    atomic_write(
        os.path.join(directory, WEIGHTS_NAME),
        lambda tmp: save_file(state, tmp, metadata={"format": "pt"}),
    )
    atomic_write(os.path.join(directory, CONFIG_NAME), lambda tmp: _write_text(tmp, text))


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
