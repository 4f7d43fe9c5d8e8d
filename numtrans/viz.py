"""Figures for learning: confusion matrices, training curves, attention maps, positional
encodings and attention masks.

Every function takes NumPy arrays (or lists), returns a ``matplotlib.figure.Figure`` and,
given ``path``, also writes it there as a PNG. Matplotlib is imported inside the functions,
so ``import numtrans`` works without it (``pip install numtrans[plot]``). Figures are built
on the non-interactive Agg canvas without ``pyplot``: nothing pops up, nothing is kept in
a global figure list, and the returned Figure still shows inline in Jupyter.

The interactive views (``attention_view``, ``model_view``, ``next_token_view``,
``translation_view``) are in ``viz_notebook.py`` and importable from here.
"""

from __future__ import annotations

import io
import os

import numpy as np


def _new_figure(width: float, height: float):
    """A Figure drawn by the Agg (PNG) renderer; no pyplot, no GUI window."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(min(width, 40.0), min(height, 40.0)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def show(fig):
    """Display a figure inline when running in a notebook (IPython); in a script, do nothing
    (the tutorials save every figure as PNG as well). Returns ``fig``."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return fig
    if fig is not None and get_ipython() is not None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        display(Image(buf.getvalue()))
    return fig


def _save(fig, path):
    if path is not None:
        path = os.fspath(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    return fig


def _tick_labels(ax, x_labels, y_labels, rotate_x: bool = True):
    ax.set_xticks(range(len(x_labels)), [str(t) for t in x_labels], rotation=90 if rotate_x else 0)
    ax.set_yticks(range(len(y_labels)), [str(t) for t in y_labels])


# ----------------------------------------------------------------------------- confusion matrix
def plot_confusion_matrix(cm, labels, path=None, normalize: bool = False):
    """Heatmap of a (K, K) confusion matrix, rows = true class, columns = predicted class.

    ``normalize=True`` divides each row by its total, so cell (i, j) is the fraction of
    class i predicted as j and the diagonal is the per-class recall (rows with no samples
    stay 0). Each cell is annotated with its count or fraction. Axes: heatmap + colorbar.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (K, K) matrix, got shape {cm.shape}")
    if len(labels) != cm.shape[0]:
        raise ValueError(f"got {len(labels)} labels for a {cm.shape[0]}x{cm.shape[0]} matrix")
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
    k = cm.shape[0]
    fig = _new_figure(2.0 + 0.6 * k, 1.5 + 0.6 * k)
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    fig.colorbar(image, ax=ax)
    threshold = (1.0 if normalize else cm.max()) / 2
    for i in range(k):
        for j in range(k):
            text = f"{cm[i, j]:.2f}" if normalize else f"{cm[i, j]:.0f}"
            color = "white" if cm[i, j] > threshold else "black"  # readable on dark cells
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    _tick_labels(ax, labels, labels, rotate_x=k > 6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix" + (" (rows normalized)" if normalize else ""))
    return _save(fig, path)


# ----------------------------------------------------------------------------- training history
def plot_history(history: dict, path=None):
    """Training curves from a dict of equally long lists, e.g. ``{"step": [...],
    "train_loss": [...], "val_loss": [...], "lr": [...]}``.

    Panels, top to bottom: every key containing "loss" on one axis; any other metric
    (e.g. "val_acc") on a second axis; "lr" on its own panel when present ("elapsed", the
    Trainer's seconds of training, is not drawn). The x-axis is
    ``history["step"]`` (or the list index). ``None``/NaN entries (e.g. val_loss measured
    only every 100 steps) are skipped, so sparse series are drawn as points joined by lines.
    """
    if not isinstance(history, dict) or not history:
        raise ValueError("history must be a non-empty dict of lists")
    series = {}
    for key, values in history.items():
        arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(
                f"history[{key!r}] must be a flat list of numbers, got shape {arr.shape}"
            )
        series[key] = arr
    n = len(next(iter(series.values())))
    for key, arr in series.items():
        if len(arr) != n:
            raise ValueError(
                f"history[{key!r}] has {len(arr)} values, expected {n} like the others"
            )
    steps = series.pop("step", np.arange(n, dtype=np.float64))
    series.pop("elapsed", None)  # the Trainer's wall clock: a time axis, not a curve
    panels = [
        ("loss", [k for k in series if "loss" in k]),
        ("metric", [k for k in series if "loss" not in k and k != "lr"]),
        ("learning rate", ["lr"] if "lr" in series else []),
    ]
    panels = [(name, keys) for name, keys in panels if keys]
    if not panels:
        raise ValueError("history has no series to plot besides 'step'")
    fig = _new_figure(7.0, 2.6 * len(panels))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, keys) in zip(axes, panels):
        for key in keys:
            keep = ~np.isnan(series[key])
            sparse = keep.sum() < 0.5 * n
            ax.plot(steps[keep], series[key][keep], marker="o" if sparse else None, ms=3, label=key)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if name != "learning rate":
            ax.legend()
    axes[0].set_title("Training history")
    axes[-1].set_xlabel("step")
    return _save(fig, path)


# ----------------------------------------------------------------------------- attention
def plot_attention(weights, x_tokens, y_tokens=None, path=None, title=None):
    """Attention weights as a grid of heatmaps, one per (layer, head).

    Args:
        weights: (T_q, T_k), (H, T_q, T_k) or (L, H, T_q, T_k); row q holds how much query
            position q attends to each key position (each row of a softmax sums to 1).
        x_tokens: the T_k key tokens (columns).
        y_tokens: the T_q query tokens (rows); default ``x_tokens`` (self-attention). For
            cross-attention pass the decoder tokens here and the encoder tokens as x_tokens.
        title: figure title.

    Returns a Figure with L * H heatmaps ("layer l, head h"), axes labelled key (columns) and
    query (rows), and one shared colorbar, so heads are comparable.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim not in (2, 3, 4):
        raise ValueError(
            f"weights must be (T_q, T_k), (H, T_q, T_k) or (L, H, T_q, T_k), got {w.shape}"
        )
    grid = w.reshape((1,) * (4 - w.ndim) + w.shape)  # always (L, H, T_q, T_k)
    n_layers, n_heads, t_q, t_k = grid.shape
    y_tokens = x_tokens if y_tokens is None else y_tokens
    if len(x_tokens) != t_k:
        raise ValueError(f"x_tokens has {len(x_tokens)} tokens but weights have T_k = {t_k} keys")
    if len(y_tokens) != t_q:
        raise ValueError(
            f"y_tokens has {len(y_tokens)} tokens but weights have T_q = {t_q} queries"
        )
    cell = 0.25 + 0.28 * max(t_q, t_k)
    fig = _new_figure(1.0 + cell * n_heads, 0.6 + cell * n_layers)
    axes = fig.subplots(n_layers, n_heads, squeeze=False)
    vmin, vmax = min(0.0, grid.min()), max(grid.max(), 1e-12)
    for layer in range(n_layers):
        for head in range(n_heads):
            ax = axes[layer, head]
            image = ax.imshow(grid[layer, head], cmap="viridis", vmin=vmin, vmax=vmax)
            _tick_labels(ax, x_tokens, y_tokens)
            if w.ndim == 4:
                ax.set_title(f"layer {layer}, head {head}", fontsize=9)
            elif w.ndim == 3:
                ax.set_title(f"head {head}", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8)
    fig.supxlabel("key (attended to)", fontsize=9)
    fig.supylabel("query (attending)", fontsize=9)
    if title is not None:
        fig.suptitle(title)
    return _save(fig, path)


# ----------------------------------------------------------------------------- positional encoding
def plot_positional_encoding(pe, path=None, dims=None):
    """A (T, C) positional-encoding matrix as a heatmap, plus a few of its columns as curves.

    For the sinusoidal encoding ``PE[t, 2i] = sin(t / 10000^(2i/C))``, ``PE[t, 2i+1] =
    cos(...)`` the curves show low dimensions oscillating fast and high ones slowly, so
    every position gets a distinct pattern. A leading batch axis of size 1 is dropped.
    ``dims`` picks the plotted columns (default: 0, 1, C/4 and C/2). Axes: heatmap,
    colorbar, curves.
    """
    pe = np.asarray(pe, dtype=np.float64)
    if pe.ndim == 3 and pe.shape[0] == 1:
        pe = pe[0]  # a (1, T, C) buffer
    if pe.ndim != 2:
        raise ValueError(f"pe must be a (T, C) matrix (or (1, T, C)), got shape {pe.shape}")
    t, c = pe.shape
    dims = sorted({0, 1, c // 4, c // 2} & set(range(c))) if dims is None else list(dims)
    if not all(0 <= d < c for d in dims):
        raise ValueError(f"dims {dims} out of range for C = {c}")
    fig = _new_figure(10.0, 4.0)
    heat_ax, curve_ax = fig.subplots(1, 2)
    image = heat_ax.imshow(pe, cmap="RdBu_r", aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=heat_ax)
    heat_ax.set_xlabel("dimension")
    heat_ax.set_ylabel("position")
    heat_ax.set_title(f"Positional encoding ({t} x {c})")
    for d in dims:
        curve_ax.plot(np.arange(t), pe[:, d], label=f"dim {d}")
    curve_ax.set_xlabel("position")
    curve_ax.set_title("Selected dimensions")
    curve_ax.legend(fontsize=8)
    return _save(fig, path)


# ----------------------------------------------------------------------------- masks
def plot_masks(masks: dict, path=None, tokens=None):
    """Boolean masks side by side, e.g. ``{"padding": pad, "causal": causal}``.

    Each mask is (T,) (e.g. a padding mask, drawn as one row) or (T_q, T_k); bool or 0/1.
    True cells are dark and marked with a dot. Whether True means "may attend" or
    "masked out" is up to the code that made it (PyTorch's ``attn_mask`` uses True =
    may attend); the title shows each mask's shape. ``tokens`` labels the key axis (and the
    query axis of square masks). Axes: one per mask.
    """
    if not isinstance(masks, dict) or not masks:
        raise ValueError("masks must be a non-empty dict {name: mask}")
    arrays = {}
    for name, mask in masks.items():
        m = np.asarray(mask)
        shape = m.shape
        if m.ndim == 1:
            m = m[None, :]
        if m.ndim != 2:
            raise ValueError(f"mask {name!r} must be (T,) or (T_q, T_k), got shape {m.shape}")
        if m.dtype != np.bool_:
            if not np.all((m == 0) | (m == 1)):
                raise ValueError(
                    f"mask {name!r} must be boolean or 0/1; for an additive mask pass `mask == 0`"
                )
            m = m.astype(bool)
        if tokens is not None and len(tokens) != m.shape[1]:
            raise ValueError(f"{len(tokens)} tokens for mask {name!r} with {m.shape[1]} columns")
        arrays[name] = (m, shape)
    fig = _new_figure(0.5 + 3.2 * len(arrays), 4.0)
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    for ax, (name, (m, shape)) in zip(axes, arrays.items()):
        ax.imshow(m, cmap="Greys", vmin=0, vmax=1.6, interpolation="nearest")  # True = dark grey
        rows, cols = np.nonzero(m)
        ax.scatter(cols, rows, s=8, c="white")
        ax.set_xticks(np.arange(-0.5, m.shape[1]), minor=True)  # cell borders
        ax.set_yticks(np.arange(-0.5, m.shape[0]), minor=True)
        ax.grid(which="minor", color="lightgray", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
        if tokens is not None:
            y_labels = tokens if m.shape[0] == len(tokens) else range(m.shape[0])
            _tick_labels(ax, tokens, y_labels)
        ax.set_title(f"{name} {shape}")
        ax.set_xlabel("key")
        if len(shape) == 2:
            ax.set_ylabel("query")
        else:
            ax.set_yticks([])  # a (T,) mask has no query axis
    return _save(fig, path)


# ----------------------------------------------------------------------------- inline explorer
# The interactive HTML views (Jupyter's _repr_html_) live in viz_notebook.py; named here too.
from .viz_notebook import (  # noqa: E402
    HTMLView,
    attention_view,
    model_view,
    next_token_view,
    translation_view,
)

__all__ = [
    "HTMLView",
    "attention_view",
    "model_view",
    "next_token_view",
    "plot_attention",
    "plot_confusion_matrix",
    "plot_history",
    "plot_masks",
    "plot_positional_encoding",
    "show",
    "translation_view",
]
