"""Fused attention as an autograd op: ``fused_attention(q, k, v, ...)`` on numtrans Tensors.

``F.scaled_dot_product_attention(..., backend="cpu")`` (and so ``nn.MultiheadAttention``) lands
here. ``FusedAttention`` is a ``numtrans.autograd.Function``: its forward runs the native kernel
and saves (q, k, v, out, lse), O(N) extra numbers per head instead of the (N, M) attention
matrix; its backward calls the native backward, which recomputes the probabilities from lse.

Shapes follow ``F.scaled_dot_product_attention``: q (..., L, E), k (..., S, E), v (..., S, Ev)
with leading dims that broadcast; the kernel itself wants (B, H, N, D), so other ranks are viewed
as 4-D and gradients are summed back over broadcast dims.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from .attention import attention_backward, attention_forward, empty_like_heads

__all__ = ["FusedAttention", "fused_attention"]


def _to_4d(x: np.ndarray, lead: tuple) -> np.ndarray:
    """View (..., T, E) with leading dims `lead` as (B, H, T, E) (broadcasting x if needed)."""
    if x.shape[:-2] != lead:
        x = np.broadcast_to(x, lead + x.shape[-2:])
    if len(lead) <= 2:
        return x.reshape((1,) * (2 - len(lead)) + x.shape)
    return x.reshape((int(np.prod(lead[:-1])), lead[-1]) + x.shape[-2:])


def _unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a gradient over the dims that broadcasting added or stretched, back to `shape`."""
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


class FusedAttention(Function):
    """out = softmax(scale q k^T + mask) v with a native forward and backward."""

    @staticmethod
    def forward(ctx, q, k, v, mask, is_causal, scale, backend="cpu"):
        q, k, v = (np.asarray(x) for x in (q, k, v))
        for name, x in (("q", q), ("k", k), ("v", v)):
            if x.ndim < 2:
                raise ValueError(f"{name} must have at least 2 dims (..., T, E), got {x.shape}")
        try:
            lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        except ValueError:
            raise ValueError(
                f"the leading (batch) dims of q {q.shape}, k {k.shape}, v {v.shape} do not "
                "broadcast"
            ) from None
        L, S = q.shape[-2], k.shape[-2]
        q4, k4, v4 = _to_4d(q, lead), _to_4d(k, lead), _to_4d(v, lead)
        mask4 = None
        if mask is not None:
            mask = np.asarray(mask)
            try:
                mask4 = _to_4d(np.broadcast_to(mask, lead + (L, S)), lead)
            except ValueError:
                raise ValueError(
                    f"attn_mask of shape {mask.shape} does not broadcast to {lead + (L, S)}"
                ) from None
        # outputs in q's memory order (empty_like_heads): heads split off a (B, L, H, E)
        # projection come back merged-ready, and the gradients in the projection's order
        out4 = empty_like_heads(q4, q4.shape[:3] + v4.shape[3:])
        out4, lse = attention_forward(q4, k4, v4, mask4, is_causal, scale, backend, out=out4)
        ctx.save_for_backward(q4, k4, v4, out4, lse)
        ctx.mask, ctx.is_causal, ctx.scale, ctx.backend = mask4, is_causal, scale, backend
        ctx.shapes, ctx.lead = (q.shape, k.shape, v.shape), lead
        return out4.reshape(lead + out4.shape[-2:])

    @staticmethod
    def backward(ctx, grad_out):
        q4, k4, v4, out4, lse = ctx.saved_tensors
        g4 = np.asarray(grad_out).reshape(out4.shape)
        grads4 = attention_backward(
            g4, q4, k4, v4, out4, lse, ctx.mask, ctx.is_causal, ctx.scale, ctx.backend,
            dq=empty_like_heads(q4, q4.shape), dk=empty_like_heads(k4, k4.shape),
            dv=empty_like_heads(v4, v4.shape),
        )  # fmt: skip
        dq, dk, dv = (
            _unbroadcast(g.reshape(ctx.lead + g.shape[-2:]), shape)
            for g, shape in zip(grads4, ctx.shapes)
        )
        return dq, dk, dv, None, None, None, None


def fused_attention(
    q, k, v, attn_mask=None, is_causal=False, scale=None, backend="cpu", dropout_p=0.0
):
    """Fused scaled-dot-product attention on Tensors -> Tensor (differentiable in q, k, v).

    ``backend``: "cpu" (the C++ kernel), "numpy" (the reference) or "auto". Attention dropout is
    not implemented by the fused kernels: ``dropout_p > 0`` raises (use backend="numpy" in
    ``F.scaled_dot_product_attention``). The mask is not differentiated.
    """
    if dropout_p:
        raise NotImplementedError(
            f"the native fused attention kernel does not support dropout (dropout_p={dropout_p}); "
            "use F.scaled_dot_product_attention(..., backend='numpy')"
        )
    mask = None if attn_mask is None else np.asarray(getattr(attn_mask, "data", attn_mask))
    return FusedAttention.apply(q, k, v, mask, bool(is_causal), scale, backend)
