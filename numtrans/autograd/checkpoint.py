"""Activation checkpointing: trade compute for memory (Chen et al., 2016, "Training Deep Nets
with Sublinear Memory Cost"), with ``torch.utils.checkpoint``'s semantics.

    y = checkpoint(block, x)        # instead of y = block(x)

Normally the backward needs every intermediate array of ``block`` (for a Transformer block:
the attention weights, the 4C-wide MLP activation, ...), so they all stay in memory until the
backward reaches them. ``checkpoint`` runs ``block`` under ``no_grad`` (nothing is kept but its
inputs and output), and when the backward arrives it runs ``block`` again, this time recording
the graph, and backpropagates through that fresh copy. Memory for the block's intermediates is
needed for one block at a time instead of for all of them; the price is a second forward.

Randomness is replayed: the numtrans RNG state is saved before the first run and restored for the
recomputation, so dropout drops the same elements both times and the gradients are identical to
an uncheckpointed run (tested). Parameters used inside ``block`` receive their gradients during
the recomputation's backward, as leaves always do. As with PyTorch's reentrant checkpoint, at least
one tensor input must require grad: otherwise nothing calls the backward at all.
"""

from __future__ import annotations

import numpy as np

from .. import random as nt_random
from ..tensor import Tensor, make_result
from . import grad_mode


def checkpoint(fn, *inputs):
    """``fn(*inputs)`` (one Tensor out), without keeping ``fn``'s intermediates for the backward."""
    rng_state = nt_random.get_rng_state()
    with grad_mode.no_grad():
        out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"checkpoint: fn must return one Tensor, got {type(out).__name__}")
    tensors = [x for x in inputs if isinstance(x, Tensor)]

    def backward(g):
        # Recompute with the same randomness, on detached copies of the inputs, then backprop.
        after = nt_random.get_rng_state()
        nt_random.set_rng_state(rng_state)
        copies = []
        for x in inputs:
            if isinstance(x, Tensor):
                copies.append(Tensor(x.data, requires_grad=x.requires_grad))
            else:
                copies.append(x)
        with grad_mode.enable_grad():
            again = fn(*copies)
        nt_random.set_rng_state(after)
        if again.requires_grad:
            again.backward(g)
        grads = []
        for x, c in zip(inputs, copies):
            if isinstance(x, Tensor):
                grads.append(None if c.grad is None else np.asarray(c.grad))
        return tuple(grads)

    if not grad_mode.is_grad_enabled() or not any(t.requires_grad for t in tensors):
        return out
    # the recorded node depends on the tensor inputs only; parameters get their grads inside
    return make_result(out.data, tuple(tensors), backward, "checkpoint")
