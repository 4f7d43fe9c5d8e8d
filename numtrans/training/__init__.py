"""Training: the loop (``trainer.py``), checkpoints without pickle (``checkpoint.py``) and the main
job, character-level GPT pretraining (``pretrain.py``)."""

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from .pretrain import PRESETS, PretrainConfig, make_config, run
from .trainer import NonFiniteLossError, TrainConfig, Trainer

__all__ = [
    "PRESETS",
    "NonFiniteLossError",
    "PretrainConfig",
    "TrainConfig",
    "Trainer",
    "latest_checkpoint",
    "load_checkpoint",
    "make_config",
    "run",
    "save_checkpoint",
]
