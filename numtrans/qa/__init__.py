"""``numtrans.qa``: extractive question answering (SQuAD), a reader on any BERT encoder.

* ``offsets.py``: WordPiece tokens with the character slice each came from;
* ``preprocess.py``: SQuAD JSON -> examples -> windowed question + context features and labels;
* ``postprocess.py``: start/end logits -> the best answer span over all windows (or no answer);
* ``reader.py``: ``QuestionAnsweringReader.answer(question, context)``.

The model is ``numtrans.models.BertForQuestionAnswering``; the metric ``numtrans.metrics.squad_scores``.
"""

from .offsets import tokenize_with_offsets
from .postprocess import best_spans, postprocess_predictions
from .preprocess import SquadExample, examples_from_articles, prepare_features, read_squad
from .reader import QuestionAnsweringReader, predict_logits

__all__ = [
    "QuestionAnsweringReader",
    "SquadExample",
    "best_spans",
    "examples_from_articles",
    "postprocess_predictions",
    "predict_logits",
    "prepare_features",
    "read_squad",
    "tokenize_with_offsets",
]
