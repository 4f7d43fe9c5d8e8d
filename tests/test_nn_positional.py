"""Sinusoidal, learned and rotary position encodings."""

import math

import numpy as np
import pytest

import numtrans as nt
from numtrans import nn
from numtrans.nn.positional import apply_rotary, rotate_half, sinusoidal_encoding


def test_sinusoidal_is_the_papers_formula():
    pe = sinusoidal_encoding(50, 16)
    for pos in (0, 1, 7, 49):
        for i in range(8):
            angle = pos / 10000 ** (2 * i / 16)
            assert pe[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-15)
            assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-15)
    assert sinusoidal_encoding(4, 5).shape == (4, 5)  # odd width works


def test_sinusoidal_shift_is_a_rotation():
    """PE(pos + k) is a linear (rotation) function of PE(pos), per channel pair."""
    pe = sinusoidal_encoding(40, 8)
    k = 3
    for i in range(4):
        w = 1 / 10000 ** (2 * i / 8)
        c, s = math.cos(k * w), math.sin(k * w)
        rot = np.array([[c, -s], [s, c]])  # [sin a, cos a] @ rot = [sin(a + kw), cos(a + kw)]
        pair = pe[:, 2 * i : 2 * i + 2]
        np.testing.assert_allclose(pair[:-k] @ rot, pair[k:], atol=1e-12)


def test_sinusoidal_module_adds_table_with_offset_and_saves_nothing():
    m = nn.SinusoidalPositionalEncoding(8, max_len=10, dtype=np.float64)
    x = nt.zeros(2, 4, 8, dtype=np.float64)
    np.testing.assert_allclose(m(x, offset=3).data[1], sinusoidal_encoding(10, 8)[3:7])
    assert m.state_dict() == {} and m.num_parameters() == 0
    with pytest.raises(ValueError, match="max_len"):
        m(nt.zeros(1, 11, 8))


def test_learned_positions():
    nt.manual_seed(0)
    m = nn.LearnedPositionalEmbedding(6, 4)
    assert list(m.state_dict()) == ["weight"] and abs(m.weight.data.std() - 0.02) < 0.01
    x = nt.zeros(2, 3, 4)
    out = m(x, offset=2)
    np.testing.assert_array_equal(out.data[0], m.weight.data[2:5])
    out.sum().backward()
    assert np.all(m.weight.grad[:2] == 0) and np.all(m.weight.grad[2:5] == 2)


def test_rope_rotates_pairs_preserves_norm_and_sees_relative_positions():
    rope = nn.RotaryEmbedding(8, max_len=32)
    rng = np.random.default_rng(0)
    q = nt.Tensor(rng.standard_normal((1, 1, 1, 8)))
    k = nt.Tensor(rng.standard_normal((1, 1, 1, 8)))

    def score(m, n):
        qm, _ = rope(q, q, offset=m)
        kn, _ = rope(k, k, offset=n)
        return float((qm.data * kn.data).sum())

    assert score(5, 2) == pytest.approx(score(13, 10), abs=1e-12)  # only m - n matters
    assert score(0, 0) == pytest.approx(float((q.data * k.data).sum()), abs=1e-12)
    qr, _ = rope(q, q, offset=7)
    assert np.linalg.norm(qr.data) == pytest.approx(np.linalg.norm(q.data))
    # position p, channel pair (j, j + 4) rotated by p * 10000^(-2j/8)
    x = np.zeros((1, 1, 1, 8))
    x[..., 1] = 1.0
    out, _ = rope(nt.Tensor(x), nt.Tensor(x), offset=3)
    angle = 3 * 10000 ** (-2 / 8)
    assert out.data[0, 0, 0, 1] == pytest.approx(math.cos(angle))
    assert out.data[0, 0, 0, 5] == pytest.approx(math.sin(angle))
    assert rope.state_dict() == {}


def test_rope_gradcheck_and_errors():
    rng = np.random.default_rng(1)
    x = nt.Tensor(rng.standard_normal((2, 2, 3, 4)), requires_grad=True)
    rope = nn.RotaryEmbedding(4, max_len=8)
    cos, sin = rope.cos[2:5], rope.sin[2:5]
    assert nt.gradcheck(lambda x: apply_rotary(x, cos, sin), [x])
    np.testing.assert_array_equal(
        rotate_half(np.array([1.0, 2.0, 3.0, 4.0])), [-3.0, -4.0, 1.0, 2.0]
    )
    with pytest.raises(ValueError, match="even"):
        nn.RotaryEmbedding(5)
    with pytest.raises(ValueError, match="max_len"):
        rope(x, x, offset=6)
