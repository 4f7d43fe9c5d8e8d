"""Evaluation metrics in plain NumPy / Python, equal to scikit-learn, scipy and sacrebleu.

* classification: :func:`accuracy_score`, :func:`precision_score`, :func:`recall_score`,
  :func:`f1_score`, :func:`precision_recall_fscore_support`, :func:`confusion_matrix`,
  :func:`classification_report`
* regression: :func:`mse`, :func:`mae`, :func:`pearson`
* language modelling: :func:`perplexity`
* translation: :func:`corpus_bleu`, :func:`sentence_bleu`, :func:`sentence_chrf`
* question answering: :func:`squad_scores` (SQuAD v1.1 exact match / F1)
* summarisation: :func:`rouge` (equal to rouge-score; ``tokenize="char"`` for Chinese)
"""

from .bleu import BLEUScore, corpus_bleu, sentence_bleu
from .chrf import sentence_chrf
from .classification import (
    UndefinedMetricWarning,
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)
from .language import perplexity
from .regression import mae, mean_absolute_error, mean_squared_error, mse, pearson
from .report import classification_report
from .rouge import rouge
from .squad import squad_scores

__all__ = [
    "BLEUScore",
    "UndefinedMetricWarning",
    "accuracy_score",
    "classification_report",
    "confusion_matrix",
    "corpus_bleu",
    "f1_score",
    "mae",
    "mean_absolute_error",
    "mean_squared_error",
    "mse",
    "pearson",
    "perplexity",
    "precision_recall_fscore_support",
    "precision_score",
    "recall_score",
    "rouge",
    "sentence_bleu",
    "sentence_chrf",
    "squad_scores",
]
