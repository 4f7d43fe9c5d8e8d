"""Pretrain, then fine-tune: masked-LM pretraining, classification/regression fine-tuning,
evaluation, and a bag-of-words baseline.

* :func:`read_labeled` / :class:`LabelMap` (``data.py``): (text, label) rows from TSV, CSV or
  JSONL, errors with line numbers; class names saved as ``labels.json`` with the model;
* :func:`classifier_from_pretrained` (``models.py``): a BERT or GPT body + a new head;
* :func:`finetune`, :func:`evaluate`, :func:`load_finetuned` (``train.py``): freezing and
  per-part learning rates, the ``numtrans.training.Trainer`` loop, accuracy / macro-F1 or MSE;
* :func:`pretrain_mlm` (``mlm.py``): a small BERT from scratch on a bundled corpus;
* :class:`BagOfWordsClassifier` (``baseline.py``): logistic regression on word counts.

Command line: ``numtrans pretrain-mlm``, ``numtrans finetune``, ``numtrans evaluate``.
"""

from .baseline import BagOfWordsClassifier
from .data import LabeledData, LabelMap, read_labeled
from .dpo import dpo_loss as dpo_loss
from .dpo import sequence_logprobs as sequence_logprobs
from .mlm import MLMConfig, corpus_texts, pretrain_mlm
from .models import classifier_from_pretrained, load_tokenizer, predict_logits
from .train import (
    FinetuneConfig,
    FinetuneResult,
    evaluate,
    evaluate_dir,
    finetune,
    format_metrics,
    load_finetuned,
)

__all__ = [
    "BagOfWordsClassifier",
    "FinetuneConfig",
    "FinetuneResult",
    "LabelMap",
    "LabeledData",
    "MLMConfig",
    "classifier_from_pretrained",
    "corpus_texts",
    "evaluate",
    "evaluate_dir",
    "finetune",
    "format_metrics",
    "load_finetuned",
    "load_tokenizer",
    "pretrain_mlm",
    "predict_logits",
    "read_labeled",
]
