"""``numtrans serve``: an explorer for numtrans's models in the browser (Starlette + uvicorn).

``probe.py`` asks a model the questions (tokens, attention weights, next-token
probabilities, classes); ``app.py`` puts a JSON API and a self-contained page around it.
Needs the ``serve`` extra (``pip install numtrans[serve]``) for the web app only.
"""

from .probe import Probe, bert_attention, gpt_attention, next_token_distribution

__all__ = ["Probe", "bert_attention", "gpt_attention", "next_token_distribution"]
