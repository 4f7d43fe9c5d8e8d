"""``numtrans serve``: an explorer for numtrans's models in the browser (Starlette + uvicorn).

``trace.py`` spells out the attention weights; ``probe.py`` (GPT, BERT) and ``seq2seq.py``
(translators) ask a model the questions (tokens, attention weights, next-token probabilities,
classes, masked tokens, beam hypotheses); ``app.py`` puts a JSON API and a self-contained page
around them. Needs the ``serve`` extra (``pip install numtrans[serve]``) for the web app only.
"""

from .probe import Probe, load_probe
from .seq2seq import TranslatorProbe, seq2seq_attention
from .trace import bert_attention, gpt_attention, next_token_distribution

__all__ = [
    "Probe",
    "TranslatorProbe",
    "bert_attention",
    "gpt_attention",
    "load_probe",
    "next_token_distribution",
    "seq2seq_attention",
]
