"""Differentiable operations. Each op computes its output and defines ``backward(g)`` right
beside it, returning d(loss)/d(input) for each input given ``g`` = d(loss)/d(output)."""
