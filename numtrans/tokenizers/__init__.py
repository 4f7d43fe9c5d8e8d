"""Tokenizers: text -> integer ids -> text, four ways behind one interface.

* :class:`CharTokenizer` - one token per character (nanoGPT's shakespeare_char).
* :class:`WordTokenizer` - rule-based words, ``min_freq``/``max_size`` vocabulary, ``<unk>``.
* :class:`ByteBPETokenizer` - GPT-2's byte-level BPE; trains, reads/writes vocab.json+merges.txt.
* :class:`WordPieceTokenizer` - BERT's basic tokenizer + greedy longest-match word pieces.

All share :class:`Tokenizer`: ``encode``, ``decode``, ``encode_batch``, ``vocab_size``,
``token_to_id``, ``save``; :func:`load` restores any saved tokenizer from its JSON file.
"""

from .base import Tokenizer, load, pad_batch
from .bpe import ByteBPETokenizer
from .char import CharTokenizer
from .pretokenize import bytes_to_unicode, pre_tokenize
from .word import WordTokenizer
from .wordpiece import WordPieceTokenizer

__all__ = [
    "ByteBPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "WordPieceTokenizer",
    "WordTokenizer",
    "bytes_to_unicode",
    "load",
    "pad_batch",
    "pre_tokenize",
]
