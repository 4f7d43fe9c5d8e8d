"""The jobs: scripts that train something end to end, kept apart from the library they use.

nanoGPT keeps ``model.py`` apart from ``train.py``; numtrans keeps the library (``tensor``,
``autograd``, ``nn``, ``models``, ``optim``, ``training.Trainer``, ``data``, ``tokenizers``, ...)
apart from these recipes. Each reads a config dataclass, builds its model and data from the
library, runs ``numtrans.training.Trainer``, and saves a directory the library can load back.
The library never imports a recipe (an import-linter contract in ``pyproject.toml``, checked
in CI); the command line (``numtrans.cli`` and ``numtrans.commands``) sits above them.

* ``pretrain.py``: the main job, a character-level GPT on a bundled corpus (``numtrans pretrain``);
* ``mlm.py``: a small BERT pretrained by masked-language modelling (``numtrans pretrain-mlm``);
* ``finetune.py``: a pretrained body + a new head, fine-tuned, saved and evaluated
  (``numtrans finetune`` / ``numtrans evaluate``);
* ``translation.py``: the English -> Chinese encoder-decoder (``numtrans train-translation``);
* ``qa.py``: a SQuAD reader (``numtrans train-qa``);
* ``distill.py``: a smaller student from a fine-tuned teacher's soft targets (``numtrans distill``);
* ``summarization.py``: CSL title generation with or without denoising pretraining
  (``benchmarks/csl_titles.py``);
* ``mixture.py``: a byte-level BPE GPT on the cleaned English + Chinese mixture
  (``numtrans pretrain-mixture``), the base ``numtrans sft --model`` tunes.
"""
