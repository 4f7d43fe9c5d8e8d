"""Training: the loop (``trainer.py``) and checkpoints without pickle (``checkpoint.py``).

The jobs that use them (character-level GPT pretraining and the others) are in
``numtrans.recipes``."""

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .trainer import NonFiniteLossError, TrainConfig, Trainer

__all__ = [
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]
