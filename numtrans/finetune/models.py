"""From a pretrained directory to a model with a task head, its tokenizer, and batches of text.

``classifier_from_pretrained(dir, num_labels)`` accepts

* a numtrans ``BertModel`` / ``BertForMaskedLM`` (e.g. from ``numtrans pretrain-mlm``): the encoder
  is kept, the MLM head dropped, a new ``BertForSequenceClassification`` head added;
* a Hugging Face BERT directory (``config.json`` with ``model_type: "bert"``, e.g. MiniLM);
* a numtrans ``GPT`` (``numtrans pretrain``) or a Hugging Face GPT-2: ``GPTForSequenceClassification``;
* an already fine-tuned classifier (to continue training or to evaluate).

The body keeps its pretrained weights; only the head (``classifier`` / ``score``) starts random.
``body_and_head`` names the two parts, for freezing and for per-part learning rates.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np

from ..autograd import no_grad
from ..functional.losses import cross_entropy, mse_loss
from ..models.bert import BertModel
from ..models.bert_heads import BertForMaskedLM, BertForSequenceClassification
from ..models.gpt import GPT
from ..models.gpt_heads import GPTForSequenceClassification, last_token_index
from ..tensor import Tensor
from ..tokenizers import ByteBPETokenizer, WordPieceTokenizer
from ..tokenizers import load as load_numtrans_tokenizer

FINETUNED = ("BertForSequenceClassification", "GPTForSequenceClassification")


def model_kind(directory: str) -> str:
    """The architecture stored in ``directory``: numtrans's class name or ``hf-<model_type>``."""
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no config.json in {directory!r}: not a model directory")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    if "architecture" in config:
        return config["architecture"]
    if "model_type" in config:
        return "hf-" + config["model_type"]
    raise ValueError(f"{path} names no architecture")


def load_tokenizer(directory: str):
    """``vocab.txt`` (WordPiece, BERT) first; then, in a Hugging Face directory (its config.json
    has ``model_type``), GPT-2's ``vocab.json`` + ``merges.txt``; then a numtrans ``tokenizer.json``
    (a Hugging Face ``tokenizer.json`` is another format, so GPT-2's two files come first there)."""
    if os.path.isfile(os.path.join(directory, "vocab.txt")):
        return WordPieceTokenizer.from_pretrained(directory)
    gpt2_files = all(
        os.path.isfile(os.path.join(directory, f)) for f in ("vocab.json", "merges.txt")
    )
    if gpt2_files and model_kind(directory).startswith("hf-"):
        return ByteBPETokenizer.from_pretrained(directory)
    path = os.path.join(directory, "tokenizer.json")
    if os.path.isfile(path):
        return load_numtrans_tokenizer(path)
    raise FileNotFoundError(
        f"no vocab.txt, vocab.json + merges.txt or tokenizer.json in {directory!r}"
    )


def classifier_from_pretrained(
    directory: str,
    num_labels: int,
    pooling: str = "mean",
    dropout: float | None = None,
):
    """A sequence classifier (``num_labels == 1``: regression) on a pretrained body."""
    kind = model_kind(directory)
    problem = "regression" if num_labels == 1 else "single_label_classification"
    if kind in FINETUNED:
        model = (
            BertForSequenceClassification
            if kind.startswith("Bert")
            else GPTForSequenceClassification
        ).from_pretrained(directory)
        if model.config.num_labels != num_labels:
            raise ValueError(
                f"{directory!r} has {model.config.num_labels} outputs, the data needs {num_labels}"
            )
        return model
    if kind in ("GPT", "hf-gpt2"):
        return GPTForSequenceClassification.from_gpt(
            GPT.from_pretrained(directory), num_labels=num_labels, problem_type=problem
        )
    if kind not in ("BertModel", "BertForMaskedLM", "hf-bert"):
        raise ValueError(f"{directory!r} holds a {kind}, which cannot be fine-tuned here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MLM head's tensors are dropped on purpose
        body = BertModel.from_pretrained(directory) if kind != "BertForMaskedLM" else None
    if body is None:
        body = BertForMaskedLM.from_pretrained(directory).bert
    config = body.config
    config.num_labels, config.problem_type = num_labels, problem
    config.classifier_pooling, config.classifier_dropout = pooling, dropout
    model = BertForSequenceClassification(config)
    model.to(body.embeddings.word_embeddings.weight.dtype)
    # A body without a pooler (from an MLM checkpoint) leaves a new pooler: strict=False.
    model.bert.load_state_dict(body.state_dict(), strict=False)
    return model


def body_and_head(model) -> tuple[list, list]:
    """``(body, head)`` lists of (name, parameter): the pretrained encoder and the new head."""
    body, head = [], []
    for name, p in model.named_parameters():
        (body if name.startswith(("bert.", "transformer.")) else head).append((name, p))
    return body, head


def model_max_length(model) -> int:
    """The most positions the model has: BERT's ``max_position_embeddings``, GPT's ``block_size``."""
    config = model.config
    return getattr(config, "max_position_embeddings", None) or config.block_size


def encode_texts(tokenizer, texts, max_length: int) -> list[list[int]]:
    """Token ids of each text, at most ``max_length`` (a final [SEP] is kept when cutting)."""
    out = []
    for text in texts:
        ids = list(tokenizer.encode(text))
        if len(ids) > max_length:
            last = ids[-1] if ids[-1] in getattr(tokenizer, "special_ids", ()) else None
            ids = ids[: max_length - 1] + [last] if last is not None else ids[:max_length]
        if not ids:
            raise ValueError(f"text {text!r:.60} encodes to no tokens")
        out.append(ids)
    return out


def pad_id_of(tokenizer) -> int:
    pad = getattr(tokenizer, "pad_id", None)
    return 0 if pad is None else int(pad)


def make_batch(ids: list[list[int]], pad_id: int, labels=None) -> dict:
    """Right-padded ``input_ids`` and ``attention_mask`` (B, T), plus ``labels`` if given."""
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for b, x in enumerate(ids):
        input_ids[b, : len(x)], mask[b, : len(x)] = x, 1
    batch = {"input_ids": input_ids, "attention_mask": mask}
    if labels is not None:
        batch["labels"] = np.asarray(labels)
    return batch


def predict_logits(model, tokenizer, texts, max_length: int = 128, batch_size: int = 32):
    """(N, num_labels) logits in eval mode. Texts are batched by length (little padding)."""
    ids = encode_texts(tokenizer, texts, min(max_length, model_max_length(model)))
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = np.zeros((len(ids), model.config.num_labels), dtype=np.float32)
    was_training = model.training
    model.eval()
    with no_grad():
        for start in range(0, len(ids), batch_size):
            rows = order[start : start + batch_size]
            batch = make_batch([ids[i] for i in rows], pad_id_of(tokenizer))
            out[rows] = model(**batch).logits.numpy()
    model.train(was_training)
    return out


def sentence_features(model, input_ids, attention_mask):
    """The (B, H) vector the head reads: BERT's pooled/[CLS]/mean vector, GPT's last token."""
    if isinstance(model, GPTForSequenceClassification):
        last = last_token_index(input_ids, attention_mask)
        return model.hidden_states(input_ids)[np.arange(len(last)), last]
    return model.pool(model.bert(input_ids, None, attention_mask), attention_mask)


def head_loss(model, features, labels):
    """The head alone on precomputed features: (logits (B, K), loss)."""
    features = features if isinstance(features, Tensor) else Tensor(features)
    labels = np.asarray(labels)
    if isinstance(model, GPTForSequenceClassification):
        logits = model.score(features)
    else:
        logits = model.classifier(model.dropout(features))
    if model.is_regression:
        return logits, mse_loss(logits, labels.astype(logits.dtype).reshape(logits.shape))
    return logits, cross_entropy(logits, labels.reshape(-1))


def encode_features(model, ids: list[list[int]], pad_id: int, batch_size: int = 32) -> np.ndarray:
    """Sentence features of every text, once, in eval mode (for a frozen body): (N, H)."""
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = None
    model.eval()
    with no_grad():
        for start in range(0, len(ids), batch_size):
            rows = order[start : start + batch_size]
            batch = make_batch([ids[i] for i in rows], pad_id)
            f = sentence_features(model, batch["input_ids"], batch["attention_mask"]).numpy()
            out = np.zeros((len(ids), f.shape[1]), dtype=f.dtype) if out is None else out
            out[rows] = f
    return out
