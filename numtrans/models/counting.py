"""Counting parameters and FLOPs.

Parameters of a GPT (C = n_embd, L = n_layer, V = vocab_size, P = block_size), with biases:

    per block   12 C^2 + 13 C      attention 4 C^2 (q, k, v, output), MLP 8 C^2 (C -> 4C -> C),
                                   biases 3C + C + 4C + C, two LayerNorms 4C
    total       L (12 C^2 + 13 C) + 2C (ln_f) + V C (wte) + P C (wpe) [+ V C if lm_head is untied]

GPT-2 small (L=12, C=768, V=50257, P=1024, tied): 124,439,808, the published "124M".

FLOPs (Kaplan et al., 2020; nanoGPT's ``estimate_mfu``), per token of training:

    6 N + 12 L T C
    6 N: each weight does one multiply-add (2 FLOPs) per token in the forward pass and two in
         the backward pass (gradients of the input and of the weight): 2 + 4 = 6 per weight.
         N counts non-embedding parameters: an embedding lookup is not a matmul.
    12 L T C: attention scores q k^T and the weighted sum p v, 2 T C FLOPs each per token and
         layer in the forward pass, times 3 for forward + backward, over a context of T tokens.

Inference (forward only) is a third of that: 2 N + 4 L T C per token.
"""

from __future__ import annotations


def count_parameters(module, trainable_only: bool = False) -> int:
    """Scalars in ``module.parameters()`` (tied weights counted once)."""
    return module.num_parameters(trainable_only)


def format_count(n: float) -> str:
    """124439808 -> '124.44M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(int(n))


def gpt_num_params(config, non_embedding: bool = False) -> int:
    """The parameter count of ``GPT(config)`` from the formula above, without building it."""
    C, L, V, P = config.n_embd, config.n_layer, config.vocab_size, config.block_size
    per_block = 12 * C * C + (13 * C if config.bias else 2 * C)  # no LayerNorm bias either
    n = L * per_block + (2 * C if config.bias else C)  # + ln_f
    token = V * C
    position = P * C if config.pos == "learned" else 0
    head = 0 if config.tie_weights else V * C
    if non_embedding:
        return n + head + (token if config.tie_weights else 0)
    return n + token + position + head


def gpt_flops_per_token(config, seq_len: int | None = None, training: bool = True) -> int:
    """6 N + 12 L T C for training (2 N + 4 L T C forward only), N non-embedding parameters,
    T = ``seq_len`` (default ``block_size``)."""
    T = config.block_size if seq_len is None else seq_len
    n = gpt_num_params(config, non_embedding=True)
    forward = 2 * n + 4 * config.n_layer * T * config.n_embd
    return 3 * forward if training else forward
