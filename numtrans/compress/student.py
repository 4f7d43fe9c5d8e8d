"""A student for distillation: a teacher BERT classifier with layers left out (DistilBERT).

    student = student_from_teacher(teacher, num_layers=3)   # teacher layers 0, 2, 4 of 6

The embeddings, the pooler, the head and ``num_layers`` evenly spaced encoder layers are copied
with their weights, so the student starts close to the teacher and needs little training.
The training recipe is ``numtrans.recipes.distill`` (``numtrans distill``).
"""

from __future__ import annotations

import copy
from dataclasses import replace

from ..models.bert_heads import BertForSequenceClassification
from ..nn.containers import ModuleList


def kept_layers(teacher_layers: int, num_layers: int) -> list[int]:
    """Evenly spaced teacher layers, from the first: 6 -> 3 keeps [0, 2, 4], 6 -> 2 [0, 3]."""
    if not 1 <= num_layers <= teacher_layers:
        raise ValueError(
            f"the student needs 1 to {teacher_layers} layers (the teacher has {teacher_layers}), "
            f"got {num_layers}"
        )
    return [i * teacher_layers // num_layers for i in range(num_layers)]


def student_from_teacher(teacher, num_layers: int) -> BertForSequenceClassification:
    """A BertForSequenceClassification with ``num_layers`` of the teacher's layers (copied)."""
    if not isinstance(teacher, BertForSequenceClassification):
        raise ValueError(
            f"the teacher must be a BertForSequenceClassification, got {type(teacher).__name__}"
        )
    keep = kept_layers(teacher.config.num_hidden_layers, num_layers)
    student = copy.deepcopy(teacher)
    student.bert.encoder.layer = ModuleList([student.bert.encoder.layer[i] for i in keep])
    student.config = replace(teacher.config, num_hidden_layers=num_layers)
    student.bert.config = student.config
    return student
