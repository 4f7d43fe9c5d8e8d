"""English -> Chinese translation with the encoder-decoder Transformer, end to end.

* :mod:`.data`: the seeded train/validation/test split of the Tatoeba pairs, the two
  tokenizers (byte-level BPE for English, characters for Chinese) and length-bucketed batches;
* :mod:`.train`: :class:`TranslationConfig`, presets, the training run (label smoothing, the
  inverse-square-root warm-up schedule) and test BLEU;
* :mod:`.translate`: :class:`Translator`, a saved model directory with both tokenizers:
  greedy / beam search / n-best translations and cross-attention maps.
"""

from .data import SPECIALS, BucketBatcher, make_tokenizers, reference_streams, split_pairs
from .train import PRESETS, TranslationConfig, make_config, run
from .translate import AttentionMap, Translator

__all__ = [
    "PRESETS",
    "SPECIALS",
    "AttentionMap",
    "BucketBatcher",
    "TranslationConfig",
    "Translator",
    "make_config",
    "make_tokenizers",
    "reference_streams",
    "run",
    "split_pairs",
]
