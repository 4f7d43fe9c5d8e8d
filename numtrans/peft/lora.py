"""LoRA: low-rank adapters on frozen ``Linear`` layers (Hu et al., 2021).

    y = x W^T + b + (alpha / r) * (x A^T) B^T
    x: (..., in)   W: (out, in) frozen   A: (r, in)   B: (out, r)   ->   y: (..., out)

Only ``A`` and ``B`` train: r * (in + out) numbers instead of in * out. ``A`` starts random
(kaiming-uniform, as ``peft`` does) and ``B`` at zero, so the adapted model starts exactly at the
base model. ``merge()`` folds the update into the weight, W <- W + (alpha / r) B A, so inference
costs nothing extra; ``unmerge()`` subtracts it again.

``LoRALinear`` shares its base layer's ``weight`` and ``bias`` Parameters, so their names in
``state_dict()`` do not change (``...query.weight``); the adapter adds ``...query.lora_A`` and
``...query.lora_B``. Several named adapters may live on one layer; ``set_adapter(name)`` chooses
the one that is registered (trained, saved, applied). An adapter that does not target this layer
may still be made active: the layer then runs as its base alone (``peft`` skips such layers too).
The inactive adapters are kept aside, and ``parameters_aside()`` hands them to ``Module.to``.
"""

from __future__ import annotations

import math

import numpy as np

from ..functional.layers import linear
from ..nn import init
from ..nn.dropout import Dropout
from ..nn.linear import Linear
from ..nn.module import Module, Parameter


def check_rank(r: int, in_features: int, out_features: int, name: str = "layer") -> None:
    if not isinstance(r, int) or r < 1 or r > min(in_features, out_features):
        raise ValueError(
            f"LoRA rank r={r} is invalid for {name} ({in_features} -> {out_features}): "
            f"need 1 <= r <= {min(in_features, out_features)}"
        )


class LoRALinear(Module):
    """A frozen ``Linear`` plus ``(alpha / r) * B A``; see the module docstring for shapes."""

    def __init__(self, base: Linear, r: int, alpha: float, dropout: float = 0.0, name="default"):
        super().__init__()
        check_rank(r, base.in_features, base.out_features)
        self.in_features, self.out_features = base.in_features, base.out_features
        object.__setattr__(self, "base_layer", base)  # kept (unregistered) for to_linear
        self.weight = base.weight  # shared, so names and tied uses stay the same
        if base.bias is not None:
            self.bias = base.bias
        else:
            self.register_parameter("bias", None)
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.lora_dropout = Dropout(dropout)
        self.adapters: dict = {}  # name -> (A, B, r, alpha); the active pair is registered
        self.active, self.merged = None, False
        self.add_adapter(name, r, alpha)

    @property
    def has_active(self) -> bool:
        """Whether the active adapter targets this layer (if not, the layer is its base)."""
        return self.active in self.adapters

    @property
    def scaling(self) -> float:
        return self.adapters[self.active][3] / self.adapters[self.active][2]

    def parameters_aside(self):
        """Every adapter's ``A`` and ``B`` (the active pair included; casting twice is harmless)."""
        for A, B, _, _ in self.adapters.values():
            yield A
            yield B

    def add_adapter(self, name: str, r: int, alpha: float) -> None:
        """A new (A random, B zero) adapter called ``name``, made active."""
        check_rank(r, self.in_features, self.out_features)
        dtype = self.weight.dtype
        A = Parameter(np.empty((r, self.in_features), dtype=dtype))
        init.kaiming_uniform_(A, a=math.sqrt(5))  # peft's choice: like Linear's default
        B = Parameter(np.zeros((self.out_features, r), dtype=dtype))
        self.adapters[name] = (A, B, r, float(alpha))
        self.set_adapter(name)

    def set_adapter(self, name: str) -> None:
        """Register adapter ``name``'s pair; a name this layer lacks leaves the base alone."""
        if self.merged:
            raise ValueError("unmerge() before switching adapters")
        self.active = name
        if name in self.adapters:
            self.lora_A, self.lora_B = self.adapters[name][0], self.adapters[name][1]
        else:
            for key in ("lora_A", "lora_B"):
                if key in self._parameters:
                    delattr(self, key)

    def delta_weight(self) -> np.ndarray:
        """(alpha / r) B A: the (out, in) update the adapter stands for."""
        return self.scaling * (self.lora_B.data @ self.lora_A.data)

    def merge(self) -> None:
        if not self.merged and self.has_active:
            self.weight.data += self.delta_weight().astype(self.weight.dtype)
            self.merged = True

    def unmerge(self) -> None:
        if self.merged:
            self.weight.data -= self.delta_weight().astype(self.weight.dtype)
            self.merged = False

    def forward(self, x):
        y = linear(x, self.weight, self.bias)
        if self.merged or not self.has_active:
            return y
        h = linear(self.lora_dropout(x), self.lora_A)  # (..., r)
        return y + linear(h, self.lora_B) * self.scaling

    def to_linear(self) -> Linear:
        """The base ``Linear`` back, holding the merged weight (for ``merge_and_unload``)."""
        self.merge()
        out = self.base_layer
        out.weight, out.bias = self.weight, self.bias
        out.weight.requires_grad_(True)
        if out.bias is not None:
            out.bias.requires_grad_(True)
        return out

    def extra_repr(self) -> str:
        if not self.has_active:
            return f"in_features={self.in_features}, out_features={self.out_features}, " \
                   f"adapter={self.active!r} (not on this layer)"  # fmt: skip
        A, _, r, alpha = self.adapters[self.active]
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, r={r}, "
            f"alpha={alpha:g}, adapter={self.active!r}, merged={self.merged}"
        )
