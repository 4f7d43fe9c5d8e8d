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
"""

from __future__ import annotations

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


def run_backward(root, grad=None, retain_graph: bool = False) -> None:
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
    grads = {id(root): grad}
    with grad_mode.no_grad():
        for node in reversed(topological_order(root)):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if not node._parents:  # a leaf: accumulate, never alias another tensor's gradient
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            if node._retain:
                node.grad = g.copy() if node.grad is None else node.grad + g
            parent_grads = node._backward(g)
            for parent, pg in zip(node._parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if anomaly and not np.isfinite(pg).all():
                    raise FloatingPointError(
                        f"anomaly: backward of op '{node._op}' produced NaN or inf"
                    )
                if pg.dtype != parent.data.dtype:  # mixed float32/float64 ops
                    pg = pg.astype(parent.data.dtype)
                if pg.shape != parent.shape:  # a bug in an op's backward, never the user's
                    raise RuntimeError(
                        f"op '{node._op}' returned a gradient of shape {pg.shape} "
                        f"for an input of shape {parent.shape}"
                    )
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            if not retain_graph:
                node._backward = _freed_graph
