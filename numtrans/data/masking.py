"""Masked-language-model (BERT) masking.

Each *eligible* position (not a special token, not padding) is chosen independently with
probability ``p = 0.15``. A chosen position's input becomes

* the mask token with probability 0.8,
* a random ordinary token with probability 0.1,
* itself (unchanged) with probability 0.1,

and its label is the original token; every other label is ``ignore_index`` (-100), so the loss
only scores the chosen positions. Keeping or randomising 20% of them stops the model from
learning that only ``[MASK]`` positions matter.

    input   [CLS] the  cat  sat  on   the  mat  [SEP] [PAD]
    masked  [CLS] the  [M]  sat  on   the  dog  [SEP] [PAD]
    labels  -100  -100 cat  -100 -100 -100 mat  -100  -100

Like Hugging Face's ``DataCollatorForLanguageModeling``, the choice is a Bernoulli draw per
position, so a sequence gets 15% of its tokens chosen *on average*. Random replacements are
drawn uniformly from the non-special ids (BERT drew from the whole vocabulary).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .collate import IGNORE_INDEX, Collator


def mask_tokens(
    input_ids: np.ndarray,
    mask_id: int,
    vocab_size: int,
    special_ids: Iterable[int] = (),
    attention_mask: np.ndarray | None = None,
    mlm_probability: float = 0.15,
    seed: int | np.random.Generator | None = 0,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(masked_ids, labels)``, both shaped like ``input_ids`` (int64).

    ``special_ids`` must include the padding id (or pass ``attention_mask``, 0 on padding);
    those positions are never chosen. ``seed`` (an int or a ``np.random.Generator``) makes
    the draw reproducible.
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"input ids must lie in [0, {vocab_size}), got {ids.min()}..{ids.max()}")
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability must be in [0, 1], got {mlm_probability}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    special = np.array(sorted(set(special_ids)), dtype=np.int64)
    eligible = ~np.isin(ids, special)
    if attention_mask is not None:
        eligible &= np.asarray(attention_mask).astype(bool)

    chosen = eligible & (rng.random(ids.shape) < mlm_probability)
    labels = np.where(chosen, ids, ignore_index)

    action = rng.random(ids.shape)  # < 0.8: mask, 0.8..0.9: random token, >= 0.9: keep
    masked = ids.copy()
    masked[chosen & (action < 0.8)] = mask_id
    randomize = chosen & (action >= 0.8) & (action < 0.9)
    ordinary = np.setdiff1d(np.arange(vocab_size), special)
    masked[randomize] = rng.choice(ordinary, size=int(randomize.sum()))
    return masked, labels


class MLMCollator:
    """Pad a list of examples (:class:`.collate.Collator`), then mask ``input_ids``.

    Gives ``input_ids`` (masked), ``attention_mask`` and ``labels``. Its generator is seeded
    once, so a run of batches is reproducible and successive batches differ.
    """

    def __init__(
        self,
        pad_id: int,
        mask_id: int,
        vocab_size: int,
        special_ids: Sequence[int],
        mlm_probability: float = 0.15,
        seed: int = 0,
        ignore_index: int = IGNORE_INDEX,
    ):
        self.collator = Collator(pad_id, ignore_index)
        self.mask_id, self.vocab_size = mask_id, vocab_size
        self.special_ids = set(special_ids) | {pad_id}
        self.mlm_probability, self.ignore_index = mlm_probability, ignore_index
        self.rng = np.random.default_rng(seed)

    def __call__(self, examples: Sequence) -> dict[str, np.ndarray]:
        if not isinstance(examples[0], dict):
            examples = [{"input_ids": ex} for ex in examples]
        batch = self.collator(examples)
        batch["input_ids"], batch["labels"] = mask_tokens(
            batch["input_ids"],
            self.mask_id,
            self.vocab_size,
            self.special_ids,
            batch["attention_mask"],
            self.mlm_probability,
            self.rng,
            self.ignore_index,
        )
        return batch
