"""Where quantization hurts: a per-layer error table a learner can read.

For every ``Linear`` (and ``Embedding``) of a float model, on inputs you choose:

    weight_error   ||deq(Wq) - W|| / ||W||            how well int8 stores the weights alone
    output_error   ||layer_q(x) - layer(x)|| / ||layer(x)||   the layer's own error, on the very
                   inputs x it receives inside the model (the weights' and the activations'
                   rounding together)
    model_error    ||model_q(x) - model(x)|| / ||model(x)||   the final output's error when this
                   layer alone is quantized: what the error costs after it travels through the rest
    outlier        max |x| / mean |x| over the layer's inputs. One large activation sets the
                   whole row's scale (s_x = max |x| / 127), so the typical values get only a few
                   of the 255 levels: LLM.int8's observation about outlier features.

The layers with the largest ``model_error`` are the sensitive ones; keep them in float32 with
``quantize(model, skip=most_sensitive(errors, 2))``.

    errors = quantization_errors(model, lambda m: m(ids))
    print(format_errors(errors))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..autograd.grad_mode import no_grad
from ..nn.embedding import Embedding
from ..nn.linear import Linear
from ..nn.module import Module
from ..tensor import Tensor
from .layers import QuantizedEmbedding, QuantizedLinear
from .quantize import _get, _names, _set_child


@dataclass
class LayerError:
    name: str
    kind: str  # "linear" or "embedding"
    weight_error: float
    output_error: float
    model_error: float
    outlier: float


class _Recorder(Module):
    """Wraps a layer and keeps a copy of every input it is given."""

    def __init__(self, layer):
        super().__init__()
        self.layer, self.inputs = layer, []

    def forward(self, x, *args, **kwargs):
        self.inputs.append(np.array(x.data if isinstance(x, Tensor) else x))
        return self.layer(x, *args, **kwargs)


def _array(out) -> np.ndarray:
    """The main output of a forward: a Tensor, the first of a tuple, or last_hidden_state."""
    if isinstance(out, tuple):
        out = out[0]
    out = getattr(out, "last_hidden_state", out)
    return np.asarray(getattr(out, "data", out), dtype=np.float64)


def _rel(a, b) -> float:
    den = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / den) if den > 0 else float(np.linalg.norm(a))


def quantization_errors(
    model: Module, run, bits: int = 8, group_size: int | None = None, embeddings: bool = True
) -> list[LayerError]:
    """One ``LayerError`` per layer, in the model's order. ``run(m)`` runs a model on your inputs
    and returns the output you care about (e.g. ``lambda m: m(ids)``, or pooled sentence
    vectors: a padded batch's hidden states at padding positions would count as errors too);
    it is called 2 + (number of layers) times. The model itself is not changed."""
    if bits == 4 and group_size is None:
        group_size = 32
    names = [(n, "linear") for n in _names(model, Linear)]
    if embeddings:
        names += [(n, "embedding") for n in _names(model, Embedding)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no Linear or Embedding layer to analyse")
    with no_grad():
        reference = _array(run(model))
        probe = copy.deepcopy(model)
        for n, _ in names:
            _set_child(probe, n, _Recorder(_get(probe, n)))
        run(probe)
        inputs = {n: _get(probe, n).inputs for n, _ in names}
        work = copy.deepcopy(model)  # one layer at a time is swapped in here, then back
        rows = []
        for n, kind in names:
            layer = _get(work, n)
            if kind == "linear":
                q = QuantizedLinear.from_linear(layer, bits, group_size)
            else:
                q = QuantizedEmbedding.from_embedding(layer)
            w = layer.weight.data
            xs_in = [Tensor(x) if kind == "linear" else x for x in inputs[n]]
            ys = [(_array(q(x)), _array(layer(x))) for x in xs_in]
            got = np.concatenate([a.ravel() for a, _ in ys]) if ys else np.zeros(0)
            want = np.concatenate([b.ravel() for _, b in ys]) if ys else np.zeros(0)
            xs = [np.abs(x).ravel() for x in inputs[n]] if kind == "linear" else []
            xs = np.concatenate(xs) if xs else np.zeros(0)
            outlier = float(xs.max() / xs.mean()) if xs.size and xs.mean() > 0 else 0.0
            _set_child(work, n, q)
            model_error = _rel(_array(run(work)), reference)
            _set_child(work, n, layer)
            rows.append(
                LayerError(
                    n, kind, _rel(q.dequantized_weight(), w), _rel(got, want), model_error, outlier
                )
            )
    return rows


def most_sensitive(errors: list[LayerError], n: int = 3, by: str = "model_error") -> list[str]:
    """Names of the ``n`` layers with the largest error ``by`` (a LayerError field)."""
    return [e.name for e in sorted(errors, key=lambda e: getattr(e, by), reverse=True)[:n]]


def format_errors(errors: list[LayerError], top: int | None = None) -> str:
    """A text table, the largest ``model_error`` first (all rows, or the ``top`` ones)."""
    rows = sorted(errors, key=lambda e: e.model_error, reverse=True)[:top]
    width = max([len(e.name) for e in rows] + [5])
    lines = [f"{'layer':<{width}} {'weight':>8} {'output':>8} {'model':>8} {'outlier':>8}"]
    for e in rows:
        lines.append(
            f"{e.name:<{width}} {e.weight_error:8.2e} {e.output_error:8.2e} "
            f"{e.model_error:8.2e} {e.outlier:8.1f}"
        )
    return "\n".join(lines)
