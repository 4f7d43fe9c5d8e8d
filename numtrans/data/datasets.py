"""Datasets for the three training objectives: next token, a label per text, translation.

A dataset is anything with ``__len__`` and ``__getitem__``; :class:`.loader.DataLoader`
batches it.

**Causal LM.** A token stream ``ids`` of length ``N`` is cut into windows of ``T = block_size``;
the target is the input shifted by one::

    ids     = [a, b, c, d, e, f, g]          block_size = 3
    x[0]    = [a, b, c]    y[0] = [b, c, d]
    x[1]    = [d, e, f]    y[1] = [e, f, g]   (stride 3: sequential, non-overlapping)

``random_batch`` instead draws ``B`` start offsets uniformly from ``0 .. N - T - 1`` (nanoGPT's
``get_batch``): any window, overlapping, a fresh sample each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def train_val_split(data: Sequence, val_fraction: float = 0.1):
    """Contiguous split: the first ``1 - val_fraction`` for training, the rest for validation.

    For a text or token stream this is nanoGPT's split (Tiny Shakespeare: 1,003,854 / 111,540
    characters). Returns ``(train, val)`` of the same type as ``data``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_train = int(len(data) * (1.0 - val_fraction))
    return data[:n_train], data[n_train:]


def random_split(items: Sequence, val_fraction: float = 0.1, seed: int = 0):
    """Shuffled split of a list of examples (rows): ``(train, val)`` lists, seeded."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = int(round(len(items) * val_fraction))
    return [items[i] for i in order[n_val:]], [items[i] for i in order[:n_val]]


class CausalLMDataset:
    """(input, target) windows of a token stream; item ``i`` starts at ``i * stride``.

    ``ds[i]`` is a pair of int64 arrays of shape ``(T,)``; :meth:`random_batch` returns
    ``(B, T)`` arrays.
    """

    def __init__(self, ids, block_size: int, stride: int | None = None):
        self.ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if len(self.ids) < block_size + 1:
            raise ValueError(
                f"a stream of {len(self.ids)} tokens is too short for block_size={block_size} "
                f"(needs at least {block_size + 1})"
            )
        self.block_size = block_size
        self.stride = block_size if stride is None else stride
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        self.n_windows = (len(self.ids) - block_size - 1) // self.stride + 1

    def __len__(self) -> int:
        return self.n_windows

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if not -self.n_windows <= i < self.n_windows:
            raise IndexError(f"window {i} out of range for {self.n_windows} windows")
        start = (i % self.n_windows) * self.stride
        window = self.ids[start : start + self.block_size + 1]
        return window[:-1], window[1:]

    def random_batch(
        self, batch_size: int, seed: int | np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``B`` windows at uniform random offsets: ``(x, y)``, each ``(B, T)`` int64."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        starts = rng.integers(0, len(self.ids) - self.block_size, size=batch_size)
        idx = starts[:, None] + np.arange(self.block_size + 1)  # (B, T + 1)
        windows = self.ids[idx]
        return windows[:, :-1], windows[:, 1:]


class TextClassificationDataset:
    """(text, label) rows as ``{"input_ids", "label"}`` examples, tokenized up front.

    ``task="classification"``: labels become int64 class ids; string labels are numbered in
    sorted order (``label_names[i]`` is class ``i``). ``task="regression"``: float64 targets.
    ``encode`` defaults to ``tokenizer.encode``. ``max_length`` truncates the ids; a closing
    special token (BERT's ``[SEP]``) stays the last token.
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence,
        tokenizer=None,
        max_length: int | None = None,
        task: str = "classification",
        encode: Callable[[str], list[int]] | None = None,
    ):
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
        encode = encode or tokenizer.encode
        specials = getattr(tokenizer, "special_ids", set())
        self.examples_ids = [
            np.asarray(_truncate(encode(t), max_length, specials), dtype=np.int64) for t in texts
        ]
        self.task = task
        if task == "regression":
            self.targets = np.asarray(labels, dtype=np.float64)
            self.label_names = None
        else:
            self.label_names = sorted({str(v) for v in labels}, key=_natural)
            index = {name: i for i, name in enumerate(self.label_names)}
            self.targets = np.array([index[str(v)] for v in labels], dtype=np.int64)

    @classmethod
    def from_rows(cls, rows, text_column: int, label_column: int, tokenizer=None, **kwargs):
        """From tuples such as ``load_corpus("uci_sentiment")``: ``text_column=2, label_column=1``."""
        texts = [r[text_column] for r in rows]
        labels = [r[label_column] for r in rows]
        return cls(texts, labels, tokenizer, **kwargs)

    @property
    def num_classes(self) -> int:
        return 0 if self.label_names is None else len(self.label_names)

    def __len__(self) -> int:
        return len(self.examples_ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.examples_ids[i], "label": self.targets[i]}


def _truncate(ids: list[int], max_length: int | None, special_ids) -> list[int]:
    """``ids[:max_length]``, keeping a final special token: ``[CLS] a b c [SEP]`` -> ``[CLS] a [SEP]``."""
    if max_length is None or len(ids) <= max_length:
        return ids
    if ids and ids[-1] in special_ids and max_length >= 2:
        return ids[: max_length - 1] + ids[-1:]
    return ids[:max_length]


def _natural(name: str):
    """Sort "2" before "10", and numbers before words."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


class TranslationDataset:
    """(source, target) sentence pairs for an encoder-decoder.

    Example ``i`` holds ``src_ids`` (source + ``<eos>``), ``tgt_ids`` (``<bos>`` + target: the
    decoder input) and ``labels`` (target + ``<eos>``: what the decoder must predict, one step
    ahead)::

        target "你 好"  ->  tgt_ids = [<bos>, 你, 好]
                            labels  = [你, 好, <eos>]

    :class:`.collate.Collator` pads them into ``src_ids``/``src_mask``, ``tgt_ids``/``tgt_mask``
    and ``labels`` (padded with ``ignore_index``).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        src_tokenizer,
        tgt_tokenizer,
        max_length: int | None = None,
        bos_token: str = "<bos>",
        eos_token: str = "<eos>",
    ):
        self.bos_id = tgt_tokenizer.token_to_id(bos_token)
        self.eos_id = tgt_tokenizer.token_to_id(eos_token)
        src_eos = src_tokenizer.token_to_id(eos_token)
        self.pairs = list(pairs)
        self.examples = []
        for n, pair in enumerate(self.pairs):
            if len(pair) < 2:
                raise ValueError(f"pair {n} has {len(pair)} fields, expected (source, target)")
            src = src_tokenizer.encode(pair[0])
            tgt = tgt_tokenizer.encode(pair[1])
            if max_length is not None:  # leave room for <eos> / <bos>
                src, tgt = src[: max_length - 1], tgt[: max_length - 1]
            self.examples.append(
                {
                    "src_ids": np.array(src + [src_eos], dtype=np.int64),
                    "tgt_ids": np.array([self.bos_id] + tgt, dtype=np.int64),
                    "labels": np.array(tgt + [self.eos_id], dtype=np.int64),
                }
            )

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]
