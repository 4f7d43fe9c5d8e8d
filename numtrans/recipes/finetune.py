"""Fine-tuning a pretrained model for classification or regression, and evaluating it.

    result = finetune("pretrained/", train_data, FinetuneConfig(epochs=3), out_dir="clf/")
    metrics = evaluate_dir("clf/", read_labeled("test.tsv"))

One training step (``training.Trainer``), on a batch of B texts padded to length T::

    logits = head(pool(body(ids)))          (B, K)
    loss = cross_entropy(logits, y)         classification, y in 0..K-1
         = mean((logits[:, 0] - y)^2)       regression (K = 1)

The head starts random while the body already "knows" language, so the body is usually
updated gently or not at all:

* ``freeze=True``: only the head trains (a linear probe of frozen features: fast, no forgetting);
* ``body_lr``: a smaller learning rate for the body than for the head (discriminative rates),
  set through optimiser parameter groups;
* ``lora_r``: LoRA, the body frozen and low-rank pairs trained on ``lora_targets`` (default:
  attention), the head in full; only the adapter is saved (``adapters.py``);
* the rate warms up linearly for ``warmup_fraction`` of the steps, then decays linearly to 0
  (BERT's schedule). AdamW, gradient clipping at 1.

The saved directory holds the model (``config.json`` + ``model.safetensors``), its tokenizer and
``labels.json`` (task, class names in id order, max_length), everything ``evaluate`` needs.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace

import numpy as np

from .. import manual_seed
from .. import metrics as M
from ..distributed import (
    DistributedTrainer,
    check_ranks_fit,
    quiet,
    quiet_unless_main,
    shard_batcher,
)
from ..finetune.adapters import add_lora, is_adapter_dir, load_with_adapter, save_adapter_dir
from ..finetune.data import LABELS_FILE, LabeledData, LabelMap, check_task
from ..finetune.models import (
    body_and_head,
    classifier_from_pretrained,
    encode_features,
    encode_texts,
    head_loss,
    load_tokenizer,
    make_batch,
    model_kind,
    model_max_length,
    pad_id_of,
    predict_logits,
)
from ..io import atomic_write_text
from ..models.bert_heads import BertForSequenceClassification
from ..models.gpt_heads import GPTForSequenceClassification
from ..optim import AdamW, LambdaLR, param_groups_for_weight_decay
from ..training.trainer import TrainConfig, Trainer
from ..validation import (
    ANY_INT,
    BOOL,
    NONNEG_FLOAT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    PROBABILITY,
    TEXT,
    check_output_dir,
    check_settings,
    one_of,
    optional,
)


@dataclass
class FinetuneConfig:
    task: str = "classification"  # or "regression"
    pooling: str = "mean"  # BERT sentence vector: "mean", "cls" or "pooled" (GPT: last token)
    epochs: float = 3.0
    batch_size: int = 16
    lr: float = 5e-5  # the head's learning rate (and the body's unless body_lr is set)
    body_lr: float | None = None
    freeze: bool = False  # train the head only
    freeze_embeddings: bool = False  # keep the token embedding table fixed (faster, big vocabs)
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_length: int = 64
    dropout: float | None = None  # classifier dropout (None: the model's hidden dropout)
    grad_clip: float | None = 1.0
    max_steps: int | None = None  # stop earlier than `epochs`
    eval_batches: int = 8
    log_interval: int = 20
    seed: int = 0
    progress: bool = False
    lora_r: int | None = None  # LoRA rank: train low-rank adapters, save only them
    lora_alpha: float = 16.0  # the update is (lora_alpha / lora_r) B A
    lora_targets: str | None = None  # Linear name patterns (None: attention's q/k/v/out)

    def __post_init__(self):
        # checked where the config is built (CLI and Python alike), not steps later
        check_settings(self, _FINETUNE_RULES)
        self.task = check_task(self.task)
        if self.lora_r is not None and self.freeze:
            raise ValueError("freeze and lora_r exclude each other (LoRA freezes the body itself)")


_FINETUNE_RULES = {
    "task": TEXT,
    "pooling": one_of("mean", "cls", "pooled"),
    "epochs": POSITIVE_FLOAT,
    "batch_size": POSITIVE_INT,
    "lr": POSITIVE_FLOAT,
    "body_lr": optional(NONNEG_FLOAT),  # 0: the body does not move (as freeze, but slower)
    "freeze": BOOL,
    "freeze_embeddings": BOOL,
    "weight_decay": NONNEG_FLOAT,
    "warmup_fraction": PROBABILITY,
    "max_length": ((int,), lambda v: v >= 3, "a whole number >= 3 ([CLS] + a token + [SEP])"),
    "dropout": optional(PROBABILITY),
    "grad_clip": optional(NONNEG_FLOAT),
    "max_steps": optional(POSITIVE_INT),
    "eval_batches": POSITIVE_INT,
    "log_interval": POSITIVE_INT,
    "seed": ANY_INT,
    "progress": BOOL,
    "lora_r": optional(POSITIVE_INT),
    "lora_alpha": POSITIVE_FLOAT,
    "lora_targets": optional(TEXT),
}


@dataclass
class FinetuneResult:
    model: object
    tokenizer: object
    labels: LabelMap
    history: dict
    metrics: dict  # on the validation data


def build_optimizer(model, cfg: FinetuneConfig, total_steps: int):
    """AdamW with per-part rates (body / head) and no decay on biases and norms; a schedule."""
    body, head = body_and_head(model)
    if cfg.freeze:
        for _, p in body:
            p.requires_grad_(False)
    elif cfg.freeze_embeddings:
        for name, p in body:
            if "word_embeddings" in name or name.endswith("wte.weight"):
                p.requires_grad_(False)
    groups = []
    for part, lr in ((head, cfg.lr), (body, cfg.body_lr if cfg.body_lr is not None else cfg.lr)):
        for group in param_groups_for_weight_decay(part, cfg.weight_decay):
            if group["params"]:
                groups.append({**group, "lr": lr})
    optimizer = AdamW(groups, lr=cfg.lr)
    warmup = int(cfg.warmup_fraction * total_steps)

    def schedule(step: int) -> float:  # linear warmup, then linear decay to 0
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, LambdaLR(optimizer, schedule)


def make_get_batch(train_ids, train_y, val_ids, val_y, pad_id: int, batch_size: int):
    """``get_batch(split, rng)`` for ``Trainer``: shuffled epochs of training batches (each text
    once per epoch) and random validation batches.

    Batches group texts of similar length (shuffle, sort each run of 50 batches' worth by
    length, cut into batches, shuffle the batches): padding to the longest text in a batch then
    wastes little compute, and the order of batches stays random.
    """
    lengths = np.array([len(x) for x in train_ids])
    state = {"batches": [], "pos": 0}

    def new_epoch(rng):
        order = rng.permutation(len(train_ids))
        run = 50 * batch_size
        order = np.concatenate(
            [
                c[np.argsort(lengths[c], kind="stable")]
                for c in np.split(order, range(run, len(order), run))
            ]
        )
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        state["batches"] = [batches[i] for i in rng.permutation(len(batches))]
        state["pos"] = 0

    def get_batch(split, rng):
        if split == "val":
            rows = rng.choice(len(val_ids), size=min(batch_size, len(val_ids)), replace=False)
            return make_batch([val_ids[i] for i in rows], pad_id, val_y[rows])
        if state["pos"] >= len(state["batches"]):
            new_epoch(rng)
        rows = state["batches"][state["pos"]]
        state["pos"] += 1
        return make_batch([train_ids[i] for i in rows], pad_id, train_y[rows])

    return get_batch


def make_feature_batches(train_x, train_y, val_x, val_y, batch_size: int):
    """``get_batch`` over precomputed (N, H) features: shuffled epochs, random val batches."""
    state = {"order": np.zeros(0, dtype=np.int64), "pos": 0}

    def get_batch(split, rng):
        if split == "val":
            rows = rng.choice(len(val_x), size=min(batch_size, len(val_x)), replace=False)
            return {"labels": val_y[rows], "features": val_x[rows]}
        if state["pos"] >= len(state["order"]):
            state["order"], state["pos"] = rng.permutation(len(train_x)), 0
        rows = state["order"][state["pos"] : state["pos"] + batch_size]
        state["pos"] += batch_size
        return {"labels": train_y[rows], "features": train_x[rows]}

    return get_batch


def finetune(
    model_dir: str,
    train: LabeledData,
    cfg: FinetuneConfig | None = None,
    val: LabeledData | None = None,
    out_dir: str | None = None,
    say=print,
    world=None,
    zero: bool | int = False,
) -> FinetuneResult:
    """Fine-tune the model in ``model_dir`` on ``train``; report on ``val``; save to ``out_dir``.

    ``world`` (``numtrans.distributed.init_world()``, under ``mpirun -n P``): data parallel. Each
    rank trains on its rows of every global batch of ``batch_size`` (a short last batch splits
    unevenly, weighted by rows: ``numtrans.distributed.data``); rank 0 alone prints, evaluates
    and saves. ``zero``: the ZeRO stage (``distributed/zero.py``): 1 shards AdamW's state over
    the ranks, 2 the gradients too."""
    main = world is None or world.is_main
    if not main:
        say = quiet
    cfg = replace(cfg or FinetuneConfig())  # a copy: max_length may be cut to the model's
    if out_dir is not None:
        check_output_dir(str(out_dir), "out")  # before training, not after it
    if val is None:
        train, val = train.split(0.1, cfg.seed)
    if os.path.isfile(os.path.join(model_dir, LABELS_FILE)):  # continue: keep the class order
        labels = LabelMap.load(model_dir)[0]
    else:
        labels = LabelMap.fit(train.labels, cfg.task)
    tokenizer = load_tokenizer(model_dir)
    manual_seed(cfg.seed)  # the new head's initial weights
    model = classifier_from_pretrained(model_dir, labels.num_labels, cfg.pooling, cfg.dropout)
    if cfg.lora_r is not None:
        add_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_targets)
    steps = math.ceil(cfg.epochs * math.ceil(len(train) / cfg.batch_size))
    steps = min(steps, cfg.max_steps) if cfg.max_steps else steps
    optimizer, scheduler = build_optimizer(model, cfg, steps)
    n_train = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
    say(
        f"fine-tuning {model_kind(model_dir)} from {model_dir} for {cfg.task}: "
        f"{len(train)} train / {len(val)} validation texts, {labels.num_labels} output(s), "
        f"{steps} steps, {n_train:,} of {model.num_parameters():,} parameters trained"
    )
    pad = pad_id_of(tokenizer)
    cfg.max_length = min(cfg.max_length, model_max_length(model))
    train_ids = encode_texts(tokenizer, train.texts, cfg.max_length)
    val_ids = encode_texts(tokenizer, val.texts, cfg.max_length)
    train_y, val_y = labels.encode(train), labels.encode(val)
    if cfg.freeze:  # the body never changes: compute its features once, train the head on them
        say("frozen body: computing sentence features once")
        get_batch = make_feature_batches(
            encode_features(model, train_ids, pad), train_y,
            encode_features(model, val_ids, pad), val_y, cfg.batch_size,
        )  # fmt: skip
        loss_fn = lambda m, batch: head_loss(m, batch["features"], batch["labels"])[1]
    else:
        get_batch = make_get_batch(train_ids, train_y, val_ids, val_y, pad, cfg.batch_size)
        loss_fn = lambda m, batch: m(**batch).loss
    train_cfg = TrainConfig.from_job(  # eval_batches, grad_clip, seed, ... by name; steps from epochs
        cfg, max_steps=steps, eval_interval=max(1, math.ceil(len(train) / cfg.batch_size)),
        progress=cfg.progress and main,
    )  # fmt: skip
    if world is None:
        trainer = Trainer(model, optimizer, get_batch, train_cfg, scheduler=scheduler,
                          loss_fn=loss_fn)  # fmt: skip
    else:
        check_ranks_fit(cfg.batch_size, world.size)
        say(f"data parallel: {world.size} ranks share each global batch of {cfg.batch_size}")
        trainer = DistributedTrainer(
            model, optimizer, shard_batcher(get_batch, world.rank, world.size, even=False),
            train_cfg, scheduler=scheduler, loss_fn=loss_fn, world=world, zero=zero,
        )  # fmt: skip
        trainer.synchronize()  # rank 0's new head everywhere, then the state hashes compared
    with quiet_unless_main(world):  # the others' loop prints nothing (rank 0 logs for the job)
        history = trainer.train()
    if world is not None:
        trainer.check_same_state("at the end")
    model.eval()
    if not main:
        return FinetuneResult(model, tokenizer, labels, history, {})
    metrics = evaluate(model, tokenizer, val, labels, cfg.max_length)
    say(format_metrics(metrics))
    if out_dir is not None and cfg.lora_r is not None:
        save_adapter_dir(out_dir, model, labels, model_dir, max_length=cfg.max_length,
                         pooling=cfg.pooling)  # fmt: skip
        _save_history(out_dir, history, metrics, cfg)
        say(f"adapter saved to {out_dir} (the base stays in {model_dir})")
    elif out_dir is not None:
        save_finetuned(out_dir, model, tokenizer, labels, cfg, history, metrics)
        say(f"saved to {out_dir}")
    return FinetuneResult(model, tokenizer, labels, history, metrics)


def save_finetuned(out_dir, model, tokenizer, labels, cfg, history=None, metrics=None) -> None:
    """Model, tokenizer, ``labels.json`` and (when given) ``history.json`` in one directory."""
    os.makedirs(out_dir, exist_ok=True)
    for p in model.parameters():  # frozen parts stay frozen only within one run
        p.requires_grad_(True)
    model.save_pretrained(out_dir)
    if hasattr(tokenizer, "save_pretrained"):
        tokenizer.save_pretrained(out_dir)
    else:
        tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    labels.save(out_dir, max_length=cfg.max_length)
    if history is not None:
        _save_history(out_dir, history, metrics, cfg)


def _save_history(out_dir, history, metrics, cfg) -> None:
    atomic_write_text(
        os.path.join(out_dir, "history.json"),
        json.dumps({"history": history, "metrics": metrics, "config": asdict(cfg)}),
    )


def load_finetuned(directory: str, adapter: str | None = None):
    """``(model, tokenizer, label_map, max_length)`` of a directory written by ``finetune``, or
    of a base ``directory`` with the LoRA ``adapter`` that ``finetune --lora`` wrote."""
    if adapter is not None:
        return load_with_adapter(directory, adapter)
    if is_adapter_dir(directory):
        raise ValueError(f"{directory!r} holds an adapter: pass --model BASE --adapter {directory}")
    labels, extra = LabelMap.load(directory)
    kind = model_kind(directory)
    classes = {c.__name__: c for c in (BertForSequenceClassification, GPTForSequenceClassification)}
    if kind not in classes:
        raise ValueError(f"{directory!r} holds a {kind}, not a fine-tuned classifier")
    model = classes[kind].from_pretrained(directory)
    return model, load_tokenizer(directory), labels, int(extra.get("max_length", 128))


def evaluate(model, tokenizer, data: LabeledData, labels: LabelMap, max_length: int = 128) -> dict:
    """Accuracy, macro-F1, the confusion matrix and a report; or MSE, MAE and Pearson's r."""
    y = labels.encode(data)
    logits = predict_logits(model, tokenizer, data.texts, max_length)
    if labels.task == "regression":
        pred = logits[:, 0]
        r = M.pearson(y, pred) if np.std(y) > 0 and np.std(pred) > 0 else float("nan")
        return {"task": "regression", "n": len(y), "mse": M.mse(y, pred),
                "mae": M.mae(y, pred), "pearson": r}  # fmt: skip
    pred = logits.argmax(axis=1)
    ids = list(range(labels.num_labels))
    return {
        "task": "classification",
        "n": len(y),
        "accuracy": M.accuracy_score(y, pred),
        "macro_f1": M.f1_score(y, pred, labels=ids, average="macro", zero_division=0.0),
        "confusion_matrix": M.confusion_matrix(y, pred, labels=ids).tolist(),
        "labels": list(labels.names),
        "report": M.classification_report(
            y, pred, labels=ids, target_names=labels.names, digits=4, zero_division=0.0
        ),
    }


def evaluate_dir(directory: str, data: LabeledData) -> dict:
    model, tokenizer, labels, max_length = load_finetuned(directory)
    return evaluate(model, tokenizer, data, labels, max_length)


def format_metrics(m: dict) -> str:
    if m["task"] == "regression":
        return f"n={m['n']}  MSE {m['mse']:.4f}  MAE {m['mae']:.4f}  Pearson r {m['pearson']:.4f}"
    return f"n={m['n']}  accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}"
