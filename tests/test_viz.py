"""Tests for numtrans.viz: every figure is a non-empty PNG with the expected axes and labels."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from numtrans import viz  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


def tick_texts(ax, axis="x"):
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def test_import_numtrans_does_not_import_matplotlib():
    code = (
        "import sys, numtrans, numtrans.viz, numtrans.metrics; print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_confusion_matrix(tmp_path):
    cm = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    fig = viz.plot_confusion_matrix(cm, ["cat", "dog", "eel"], tmp_path / "cm.png")
    assert_png(tmp_path / "cm.png")
    ax, colorbar = fig.axes
    assert len(fig.axes) == 2
    assert tick_texts(ax, "x") == tick_texts(ax, "y") == ["cat", "dog", "eel"]
    assert ax.get_title() == "Confusion matrix"
    assert [t.get_text() for t in ax.texts][:3] == ["5", "1", "0"]
    fig = viz.plot_confusion_matrix(
        cm, ["cat", "dog", "eel"], tmp_path / "sub" / "n.png", normalize=True
    )
    assert_png(tmp_path / "sub" / "n.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts][:4] == ["0.83", "0.17", "0.00", "0.40"]
    assert ax.get_images()[0].get_array()[2].tolist() == [0, 0, 0]  # empty row stays 0
    with pytest.raises(ValueError, match="square"):
        viz.plot_confusion_matrix(np.ones((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="3 labels"):
        viz.plot_confusion_matrix(np.ones((2, 2)), ["a", "b", "c"])


def test_history(tmp_path):
    hist = {
        "step": [0, 10, 20, 30],
        "train_loss": [2.0, 1.5, 1.2, 1.0],
        "val_loss": [None, 1.6, None, 1.3],
        "lr": [1e-3, 8e-4, 5e-4, 1e-4],
    }
    fig = viz.plot_history(hist, tmp_path / "h.png")
    assert_png(tmp_path / "h.png")
    assert len(fig.axes) == 2
    loss_ax, lr_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train_loss", "val_loss"]
    assert loss_ax.lines[1].get_xdata().tolist() == [10, 30]  # None values skipped
    assert lr_ax.get_ylabel() == "learning rate"
    assert len(viz.plot_history({"train_loss": [3, 2, 1]}).axes) == 1
    assert len(viz.plot_history({"train_loss": [3, 2], "val_acc": [0.5, 0.7]}).axes) == 2
    with pytest.raises(ValueError, match="'lr'.*2 values"):
        viz.plot_history({"train_loss": [1, 2, 3], "lr": [1, 2]})
    with pytest.raises(ValueError, match="non-empty dict"):
        viz.plot_history({})


def test_attention_shapes(tmp_path):
    rng = np.random.default_rng(0)
    toks = ["<s>", "the", "cat", "sat"]
    w = rng.dirichlet(np.ones(4), size=(2, 3, 4))  # (L=2, H=3, T_q=4, T_k=4)
    fig = viz.plot_attention(w, toks, path=tmp_path / "a.png", title="self-attention")
    assert_png(tmp_path / "a.png")
    assert len(fig.axes) == 2 * 3 + 1  # heatmaps + shared colorbar
    assert fig.axes[4].get_title() == "layer 1, head 1"
    assert tick_texts(fig.axes[0], "x") == toks and tick_texts(fig.axes[0], "y") == toks
    assert fig._suptitle.get_text() == "self-attention"
    assert len(viz.plot_attention(w[0], toks).axes) == 3 + 1
    assert viz.plot_attention(w[0], toks).axes[2].get_title() == "head 2"
    # cross-attention: 2 decoder queries over 4 encoder keys
    src, tgt = ["le", "chat", "dort", "</s>"], ["the", "cat"]
    fig = viz.plot_attention(w[0, 0, :2], src, tgt, path=tmp_path / "x.png")
    assert_png(tmp_path / "x.png")
    assert len(fig.axes) == 2
    assert tick_texts(fig.axes[0], "x") == src and tick_texts(fig.axes[0], "y") == tgt
    with pytest.raises(ValueError, match="T_k = 4"):
        viz.plot_attention(w, toks[:3])
    with pytest.raises(ValueError, match="T_q = 2"):
        viz.plot_attention(w[0, 0, :2], src, ["a", "b", "c"])
    with pytest.raises(ValueError, match="weights must be"):
        viz.plot_attention(np.ones(4), toks)
    with pytest.raises(ValueError, match="weights must be"):
        viz.plot_attention(np.ones((1, 1, 1, 4, 4)), toks)


def test_positional_encoding(tmp_path):
    t, c = 32, 16
    pos = np.arange(t)[:, None]
    freq = 1.0 / 10000 ** (np.arange(0, c, 2) / c)
    pe = np.zeros((t, c))
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * freq), np.cos(pos * freq)
    fig = viz.plot_positional_encoding(pe, tmp_path / "pe.png")
    assert_png(tmp_path / "pe.png")
    assert len(fig.axes) == 3  # heatmap, colorbar, curves
    assert [line.get_label() for line in fig.axes[1].lines] == ["dim 0", "dim 1", "dim 4", "dim 8"]
    assert len(viz.plot_positional_encoding(pe[None], dims=[3]).axes[1].lines) == 1
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        viz.plot_positional_encoding(np.ones(5))
    with pytest.raises(ValueError, match="out of range"):
        viz.plot_positional_encoding(pe, dims=[16])


def test_masks(tmp_path):
    t = 5
    causal = np.tril(np.ones((t, t), dtype=bool))
    pad = np.array([1, 1, 1, 0, 0])
    toks = ["a", "b", "c", "<pad>", "<pad>"]
    fig = viz.plot_masks(
        {"causal": causal, "padding": pad, "both": causal & pad.astype(bool)},
        tmp_path / "m.png",
        tokens=toks,
    )
    assert_png(tmp_path / "m.png")
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["causal (5, 5)", "padding (5,)", "both (5, 5)"]
    assert tick_texts(fig.axes[0], "x") == toks and tick_texts(fig.axes[0], "y") == toks
    assert len(fig.axes[0].collections[0].get_offsets()) == causal.sum()  # a dot per True
    with pytest.raises(ValueError, match="'x' must be boolean or 0/1"):
        viz.plot_masks({"x": np.array([[0.0, -np.inf]])})
    with pytest.raises(ValueError, match=r"'b' must be \(T,\) or \(T_q, T_k\)"):
        viz.plot_masks({"b": np.ones((2, 3, 3), dtype=bool)})
    with pytest.raises(ValueError, match="2 tokens"):
        viz.plot_masks({"c": causal}, tokens=["a", "b"])
    with pytest.raises(ValueError, match="non-empty dict"):
        viz.plot_masks({})
