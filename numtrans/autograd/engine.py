"""The backward pass: walk the graph from the output to the leaves, applying the chain rule.

Each non-leaf tensor ``t`` holds ``t._parents`` (its inputs) and ``t._backward(g)``, which maps
``g = d(out)/d(t)`` to a tuple with one gradient per parent. ``run_backward``:

1. orders the graph topologically (iteratively: no recursion limit, even for 100,000 ops);
2. visits tensors from the output back to the leaves, summing the gradient contributions each
   tensor receives (a tensor used twice gets the sum of both paths);
3. adds the final gradient of every leaf into ``leaf.grad`` (accumulation, as in PyTorch);
4. frees the graph (``retain_graph=False``) so memory is released; a second backward through a
   freed graph raises an error that says so.

The graph is recorded as the ops run, by ``make_result`` in ``tensor.py`` (it makes each op's
output Tensor); this module only walks it, and needs no Tensor class of its own.

Step 2 has a textbook form and a tuned one beside it (they give the same bits, tested):

- ``accumulate_textbook``: ``grads[t] = grads[t] + g``, a new array for every sum;
- ``accumulate``: the engine allocates one buffer for a tensor that receives a second
  contribution and adds every later one into it in place; a backward may also return a
  ``SliceGrad(index, value)`` ("zero except ``value`` at ``index``": ``x[index]``'s gradient),
  which the engine writes into that buffer instead of the op allocating a zero array of the
  whole input for each slice (a GPT's q, k, v split: one (B, T, 3C) buffer per attention layer
  instead of three zero arrays and two full-size sums). Pieces along one axis are written into
  an uninitialised buffer and only what none of them covered is zeroed, so a split's backward
  makes no zero array at all.

Buffers the engine owns are never visible to the caller while it may still change them: a
gradient an op returned (perhaps ``g`` itself, handed to two parents) is never written into.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import grad_mode


def _freed_graph(_grad):
    raise RuntimeError(
        "trying to backward through the graph a second time: its intermediate values were freed "
        "by the first backward. Call backward(retain_graph=True) the first time if you need this."
    )


def check_forward(data: np.ndarray, op: str) -> None:
    """Anomaly mode's forward check: an op that produced NaN or +inf is named at once."""
    if np.issubdtype(data.dtype, np.floating) and (np.isnan(data).any() or np.isposinf(data).any()):
        raise FloatingPointError(f"anomaly: op '{op}' produced NaN or +inf in its forward output")


def topological_order_recursive(root) -> list:
    """The textbook version (micrograd's ``build_topo``): visit the parents, then the node.

    Clear, but Python's recursion limit (1000 frames) stops it on a deep graph — a long
    unrolled sequence or a 12-layer model's backward easily has more nodes in a chain — so the
    engine runs the explicit-stack version below, which gives the same order (tested).
    """
    order, visited = [], set()

    def visit(node):
        if id(node) in visited:
            return
        visited.add(id(node))
        for parent in node._parents:
            if parent.requires_grad:
                visit(parent)
        order.append(node)

    visit(root)
    return order


def topological_order(root) -> list:
    """Tensors that ``root`` depends on (requiring grad), each after all of its parents.

    ``topological_order_recursive`` with the call stack made explicit: each node is pushed
    twice, once to expand its parents and once (``parents_done``) to be emitted after them.
    The order can differ from the recursive one where two branches are independent; both put
    every parent before its children, which is all the backward needs (tested)."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in node._parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


class SliceGrad(NamedTuple):
    """A gradient that is zero everywhere except ``value`` at ``parent[index]``.

    ``index`` is a basic index (ints, slices, None, Ellipsis) and ``value.shape`` is the shape
    of ``parent.data[index]``. A backward returns it instead of a full array when its input was
    only read at ``index`` (a slice, one piece of ``split``)."""

    index: tuple
    value: np.ndarray

    def dense(self, shape, dtype) -> np.ndarray:
        """The full gradient: zeros of ``shape`` with ``value`` written at ``index``."""
        grad = np.zeros(shape, dtype=dtype)
        grad[self.index] = self.value
        return grad


def accumulate_textbook(grads: dict, owned: set, key: int, pg, shape, pieces=None) -> None:
    """Sum one contribution ``pg`` into ``grads[key]``: a new array for every sum. (``owned``
    and ``pieces`` are the tuned version's bookkeeping, unused here.)"""
    if isinstance(pg, SliceGrad):
        pg = pg.dense(shape, pg.value.dtype)
    grads[key] = pg if key not in grads else grads[key] + pg


def along_one_axis(index, shape) -> tuple | None:
    """``(axis, start, stop)`` when the basic ``index`` keeps every axis of ``shape`` whole but
    one, of which it takes the range ``start:stop`` (a split's pieces, ``x[..., a:b]``); else
    None (an integer, a step, None, two sliced axes)."""
    index = index if isinstance(index, tuple) else (index,)
    dots = [n for n, i in enumerate(index) if i is Ellipsis]
    if len(dots) == 1:
        at = dots[0]
        index = index[:at] + (slice(None),) * (len(shape) - len(index) + 1) + index[at + 1 :]
    if len(index) > len(shape) or not all(isinstance(i, slice) for i in index):
        return None
    found = None
    for axis, (piece, n) in enumerate(zip(index, shape)):
        start, stop, step = piece.indices(n)
        if (start, stop, step) == (0, n, 1):
            continue
        if step != 1 or found is not None:
            return None
        found = (axis, start, max(start, stop))
    return found or ((0, 0, shape[0]) if shape else None)


def zero_gaps(buf: np.ndarray, axis: int, spans: list) -> None:
    """Zero what no piece wrote: the ranges along ``axis`` outside every [start, stop) span."""
    lead, end = (slice(None),) * axis, 0
    for start, stop in sorted(spans):
        if start > end:
            buf[lead + (slice(end, start),)] = 0
        end = max(end, stop)
    if end < buf.shape[axis]:
        buf[lead + (slice(end, None),)] = 0


def _apart(span: tuple, spans: list) -> bool:
    """True when [start, stop) overlaps none of ``spans``."""
    start, stop = span
    return all(stop <= a or b <= start for a, b in spans)


def accumulate(grads: dict, owned: set, key: int, pg, shape, pieces=None) -> None:
    """``accumulate_textbook`` without its temporaries.

    ``owned`` holds the keys whose array the engine allocated itself (nobody else holds it),
    so only those are written in place. The first full contribution is stored as the op
    returned it (no copy: it may be ``g`` itself, shared with another parent); a second one
    makes a buffer of the engine's own (``current + pg``); every later one is added into it.

    Slices along one axis (``pieces``: key -> (axis, written spans)): the first is written
    into an *uninitialised* buffer, and so is every later one that covers new ground. A split's
    pieces fill the whole buffer that way, so no zero array of the input's size is ever made;
    whatever no piece wrote is zeroed once, when a contribution overlaps (then it is added) or
    when the gradient is complete (``run_backward``). Other slices use a zeroed buffer.
    """
    current = grads.get(key)
    if isinstance(pg, SliceGrad):
        span = None if pieces is None else along_one_axis(pg.index, shape)
        if current is None:
            if span is None:  # zeros with the value written in
                grads[key] = pg.dense(shape, pg.value.dtype)
            else:  # written, not zeroed: the other pieces usually fill the rest
                grads[key] = current = np.empty(shape, pg.value.dtype)
                current[pg.index] = pg.value
                pieces[key] = (span[0], [span[1:]])
            owned.add(key)
            return
        written = None if pieces is None else pieces.get(key)  # (axis, spans) so far
        if written is not None:
            if span is not None and span[0] == written[0] and _apart(span[1:], written[1]):
                current[pg.index] = pg.value  # new ground: written, still nothing zeroed
                written[1].append(span[1:])
                return
            zero_gaps(current, *pieces.pop(key))  # overlapping: dense from here on, then add
        elif key not in owned:
            current = grads[key] = np.array(current)  # a copy (np.array: even of a 0-d sum)
            owned.add(key)
        current[pg.index] += pg.value
    elif current is None:
        grads[key] = pg
    elif key in owned:
        if pieces is not None and key in pieces:
            zero_gaps(current, *pieces.pop(key))
        np.add(current, pg, out=current)
    else:
        grads[key] = total = current + pg
        if isinstance(total, np.ndarray):  # 0-d arrays sum to a NumPy scalar: nothing to own
            owned.add(key)


def _checked(node, parent, pg, anomaly: bool):
    """``pg`` in the parent's dtype, after checking its shape (and finiteness in anomaly mode)."""
    dense = not isinstance(pg, SliceGrad)
    value = pg if dense else pg.value
    if anomaly and not np.isfinite(value).all():
        raise FloatingPointError(f"anomaly: backward of op '{node._op}' produced NaN or inf")
    if value.dtype != parent.data.dtype:  # mixed float32/float64 ops
        value = value.astype(parent.data.dtype)
    # a bug in an op's backward, never the user's
    target = parent.shape if dense else parent.data[pg.index].shape
    if value.shape != target:
        where = "" if dense else f" at index {pg.index}"
        raise RuntimeError(
            f"op '{node._op}' returned a gradient of shape {value.shape}{where} "
            f"for an input of shape {parent.shape}"
        )
    return value if dense else SliceGrad(pg.index, value)


def run_backward(root, grad=None, retain_graph: bool = False, textbook: bool = False) -> None:
    """Backpropagate from ``root`` (``textbook=True``: sum with ``accumulate_textbook``)."""
    if not root.requires_grad:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: no input of the computation "
            "had requires_grad=True (or it ran under no_grad())"
        )
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward() without a `grad` argument needs a scalar output, got shape "
                f"{root.shape}; pass grad= of the same shape (or reduce with .sum()/.mean())"
            )
        grad = np.ones_like(root.data)
    else:
        grad = np.asarray(getattr(grad, "data", grad), dtype=root.dtype)
        if grad.shape != root.shape:
            raise ValueError(f"grad has shape {grad.shape} but the output has shape {root.shape}")

    anomaly = grad_mode._state["anomaly"]
    add = accumulate_textbook if textbook else accumulate
    grads, owned, pieces = {id(root): grad}, set(), {}
    with grad_mode.no_grad():
        for node in reversed(topological_order(root)):
            key = id(node)
            g = grads.pop(key, None)
            if g is None:
                continue
            if key in pieces:  # slices that did not cover it all: zero the rest now
                zero_gaps(g, *pieces.pop(key))
            mine = key in owned  # nobody else holds g: a leaf may keep it without a copy
            owned.discard(key)
            if not node._parents:  # a leaf: accumulate, never alias another tensor's gradient
                if node.grad is None:
                    node.grad = g if mine else g.copy()
                elif mine:  # a new array all the same: the caller may hold the old .grad
                    node.grad = np.add(node.grad, g, out=g)
                else:
                    node.grad = node.grad + g
                continue
            if node._retain:  # g goes on to the parents (maybe as itself): the caller gets a copy
                node.grad = g.copy() if node.grad is None else node.grad + g
            parent_grads = node._backward(g)
            for parent, pg in zip(node._parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                pg = _checked(node, parent, pg, anomaly)
                add(grads, owned, id(parent), pg, parent.shape, pieces)
            if not retain_graph:
                node._backward = _freed_graph
