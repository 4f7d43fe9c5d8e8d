"""``numtrans.models``: the three Transformer families, one readable file each.

* ``GPT`` (``gpt.py``): decoder-only causal language model.
* ``BertModel``, ``BertForMaskedLM``, ``BertForSequenceClassification``,
  ``BertForQuestionAnswering`` (``bert.py``,
  ``bert_heads.py``): bidirectional encoder with task heads.
* ``Seq2SeqTransformer`` (``seq2seq.py``): encoder-decoder for translation.

Every model has a config dataclass, ``save_pretrained(dir)`` and ``Model.from_pretrained(dir)``
(``pretrained.py``: JSON + safetensors, no pickle). ``counting.py`` counts parameters and FLOPs.
``hf.py`` loads Hugging Face BERT/GPT-2 checkpoints and exports numtrans models to their naming.
"""

from .bert import BertConfig, BertModel, BertModelOutput, load_hf_bert
from .bert_heads import (
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    ModelOutput,
    QuestionAnsweringModelOutput,
)
from .counting import count_parameters, format_count, gpt_flops_per_token, gpt_num_params
from .gpt import GPT, GPTConfig
from .gpt_heads import GPTClassificationConfig, GPTForSequenceClassification
from .hf import export_hf
from .sentence_encoder import SentenceEncoder
from .seq2seq import Seq2SeqConfig, Seq2SeqTransformer

__all__ = [
    "SentenceEncoder",
    "GPT",
    "BertConfig",
    "BertForMaskedLM",
    "BertForQuestionAnswering",
    "BertForSequenceClassification",
    "BertModel",
    "BertModelOutput",
    "GPTClassificationConfig",
    "GPTConfig",
    "GPTForSequenceClassification",
    "ModelOutput",
    "QuestionAnsweringModelOutput",
    "Seq2SeqConfig",
    "Seq2SeqTransformer",
    "count_parameters",
    "export_hf",
    "format_count",
    "gpt_flops_per_token",
    "gpt_num_params",
    "load_hf_bert",
]
