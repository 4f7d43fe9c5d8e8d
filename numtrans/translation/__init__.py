"""English -> Chinese translation with the encoder-decoder Transformer, end to end.

* :mod:`.data`: the seeded train/validation/test split of the Tatoeba pairs, the two
  tokenizers (byte-level BPE for English, characters for Chinese) and length-bucketed batches;
* :mod:`.translate`: :class:`Translator`, a saved model directory with both tokenizers:
  greedy / beam search / n-best translations and cross-attention maps.

The training run (``TranslationConfig``, presets, label smoothing, the inverse-square-root
warm-up, test BLEU) is the job ``numtrans.recipes.translation``.
"""

from .data import SPECIALS, BucketBatcher, make_tokenizers, reference_streams, split_pairs
from .translate import AttentionMap, Translator

__all__ = [
    "SPECIALS",
    "AttentionMap",
    "BucketBatcher",
    "Translator",
    "make_tokenizers",
    "reference_streams",
    "split_pairs",
]
