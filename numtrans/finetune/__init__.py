"""Fine-tuning's library: labelled data, a pretrained body with a new head, the DPO loss, and a
bag-of-words baseline. The jobs (masked-LM pretraining, the fine-tuning run and its evaluation)
are ``numtrans.recipes.mlm`` and ``numtrans.recipes.finetune``.

* :func:`read_labeled` / :class:`LabelMap` (``data.py``): (text, label) rows from TSV, CSV or
  JSONL, errors with line numbers; class names saved as ``labels.json`` with the model;
* :func:`classifier_from_pretrained` (``models.py``): a BERT or GPT body + a new head;
* :func:`dpo_loss` (``dpo.py``): direct preference optimisation's loss;
* :class:`BagOfWordsClassifier` (``baseline.py``): logistic regression on word counts.

Command line: ``numtrans pretrain-mlm``, ``numtrans finetune``, ``numtrans evaluate``.
"""

from .baseline import BagOfWordsClassifier
from .data import LabeledData, LabelMap, read_labeled
from .dpo import dpo_loss as dpo_loss
from .dpo import sequence_logprobs as sequence_logprobs
from .models import classifier_from_pretrained, load_tokenizer, predict_logits

__all__ = [
    "BagOfWordsClassifier",
    "LabelMap",
    "LabeledData",
    "classifier_from_pretrained",
    "load_tokenizer",
    "predict_logits",
    "read_labeled",
]
