"""The explorer shows a Hugging Face GPT-2 directory (config.json with model_type "gpt2",
model.safetensors, vocab.json + merges.txt): the tokens are GPT-2's byte-level BPE and the
next-token logits and attention weights equal transformers' own."""

from __future__ import annotations

import numpy as np
import pytest

from numtrans.serve import load_probe
from numtrans.tokenizers import ByteBPETokenizer

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TEXT = "to be or not to be, that is the question"


@pytest.fixture(scope="module")
def hf_gpt2_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf-gpt2")
    tok = ByteBPETokenizer.train([TEXT * 4, "whether tis nobler in the mind"], vocab_size=300)
    tok.save_pretrained(directory)  # GPT-2's vocab.json + merges.txt
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=tok.vocab_size, n_positions=32, n_embd=32, n_layer=2, n_head=4,
        attn_implementation="eager",
    )  # fmt: skip
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(directory, safe_serialization=True)
    return directory, model, tok


def test_the_explorer_reads_a_hugging_face_gpt2_directory(hf_gpt2_dir):
    directory, hf_model, tok = hf_gpt2_dir
    probe = load_probe(directory, name="gpt2")
    assert probe.family == "gpt" and probe.kind == "hf-gpt2"
    ids, truncated = probe.encode(TEXT)
    assert ids == tok.encode(TEXT) and not truncated
    with torch.no_grad():
        out = hf_model(torch.tensor([ids]), output_attentions=True)
    np.testing.assert_allclose(probe.next_logits(ids), out.logits[0, -1].numpy(), atol=1e-4)
    weights = probe.attention(ids)  # (layers, heads, T, T)
    expected = np.stack([a[0].numpy() for a in out.attentions])
    np.testing.assert_allclose(weights, expected, atol=1e-5)
