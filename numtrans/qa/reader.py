"""``QuestionAnsweringReader``: a question and a passage in, the answer span out.

    reader = QuestionAnsweringReader.from_pretrained("my-squad-reader")
    reader.answer("Who won Super Bowl 50?", passage)
    # {"answer": "Denver Broncos", "score": 11.3, "start": 177, "end": 191}

It chains the three steps of this package: ``prepare_features`` (windows of question + context),
the model's start/end logits (``BertForQuestionAnswering``), and ``postprocess_predictions``
(best span over all windows, or "" for no answer when ``version_2_with_negative``). ``start`` and
``end`` are character offsets: ``context[start:end] == answer``.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..autograd import no_grad
from ..models.bert import BertModel
from ..models.bert_heads import BertForMaskedLM, BertForQuestionAnswering
from ..tokenizers.wordpiece import WordPieceTokenizer
from .postprocess import postprocess_predictions
from .preprocess import SquadExample, prepare_features


def predict_logits(model, features: dict, batch_size: int = 16):
    """(F, T) start and end logits of every feature, in eval mode and without gradients."""
    was_training = model.training
    model.eval()
    starts, ends = [], []
    with no_grad():
        for i in range(0, len(features["input_ids"]), batch_size):
            out = model(
                features["input_ids"][i : i + batch_size],
                features["token_type_ids"][i : i + batch_size],
                features["attention_mask"][i : i + batch_size],
            )
            starts.append(out.start_logits.numpy())
            ends.append(out.end_logits.numpy())
    model.train(was_training)
    T = features["input_ids"].shape[1]
    if not starts:
        return np.zeros((0, T)), np.zeros((0, T))
    return np.concatenate(starts), np.concatenate(ends)


def saved_architecture(directory) -> str | None:
    """The ``architecture`` a numtrans ``config.json`` names (None for Hugging Face ones)."""
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            values = json.load(f)
        except json.JSONDecodeError:
            raise ValueError(f"{path}: not valid JSON") from None
    return values.get("architecture") if isinstance(values, dict) else None


class QuestionAnsweringReader:
    def __init__(
        self,
        model: BertForQuestionAnswering,
        tokenizer: WordPieceTokenizer,
        max_length: int = 384,
        stride: int = 128,
        n_best: int = 20,
        max_answer_length: int = 30,
        version_2_with_negative: bool = False,
        null_score_diff_threshold: float = 0.0,
    ):
        limit = model.config.max_position_embeddings
        if max_length > limit:
            raise ValueError(f"max_length {max_length} exceeds the model's {limit} positions")
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.stride = max_length, stride
        self.n_best, self.max_answer_length = n_best, max_answer_length
        self.version_2_with_negative = version_2_with_negative
        self.null_score_diff_threshold = null_score_diff_threshold

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **kwargs) -> QuestionAnsweringReader:
        """A fine-tuned reader saved by ``save_pretrained`` (model + ``vocab.txt``)."""
        model = BertForQuestionAnswering.from_pretrained(str(directory))
        return cls(model, WordPieceTokenizer.from_pretrained(directory), **kwargs)

    @classmethod
    def from_encoder(cls, directory: str | os.PathLike, **kwargs) -> QuestionAnsweringReader:
        """A reader to fine-tune: any BERT encoder directory (e.g. all-MiniLM-L6-v2, or a numtrans
        ``BertModel`` or ``BertForMaskedLM``) plus a new, randomly initialised ``qa_outputs``."""
        if saved_architecture(directory) == "BertForMaskedLM":  # e.g. from finetune.pretrain_mlm
            encoder = BertForMaskedLM.from_pretrained(str(directory)).bert
        else:
            encoder = BertModel.from_pretrained(str(directory))
        model = BertForQuestionAnswering(encoder.config)
        weights = {k: v for k, v in encoder.state_dict().items() if not k.startswith("pooler.")}
        model.bert.load_state_dict(weights, strict=False)
        model.to(encoder.embeddings.word_embeddings.weight.dtype)
        return cls(model.eval(), WordPieceTokenizer.from_pretrained(directory), **kwargs)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        self.model.save_pretrained(str(directory))
        self.tokenizer.save_pretrained(directory)

    def answer_batch(self, questions: list[str], contexts: list[str]) -> list[dict]:
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        examples = [SquadExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))]
        features = prepare_features(
            examples, self.tokenizer, self.max_length, self.stride, training=False
        )
        start, end = predict_logits(self.model, features)
        preds = postprocess_predictions(
            examples, features, start, end, self.n_best, self.max_answer_length,
            self.version_2_with_negative, self.null_score_diff_threshold,
        )  # fmt: skip
        return [preds[ex.id] for ex in examples]

    def answer(self, question: str, context: str) -> dict:
        """``{"answer", "score", "start", "end"}`` for one question about one passage."""
        return self.answer_batch([question], [context])[0]
