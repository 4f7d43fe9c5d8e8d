"""Issue 14, item 5: float ops on integer tensors promote to the default float dtype (one rule,
every float op), never a silent integer result."""

import numpy as np
import pytest

import numtrans as nt
import numtrans.functional as F
from numtrans import nn

INT = np.array([[1, 2, 3, 4]])
REF = INT.astype(np.float64)


@pytest.mark.parametrize(
    "op",
    [
        lambda x: nn.LayerNorm(4)(x),
        lambda x: F.gelu(x),
        lambda x: F.gelu(x, approximate="tanh"),
        lambda x: F.softmax(x, -1),
        lambda x: F.log_softmax(x, -1),
        lambda x: x.exp(),
        lambda x: x.log(),
        lambda x: x.sqrt(),
        lambda x: x.tanh(),
        lambda x: x.sigmoid(),
    ],
)
def test_float_op_on_integers_promotes(op):
    out_int = op(nt.tensor(INT))
    out_float = op(nt.tensor(REF.astype(nt.get_default_dtype())))
    assert out_int.dtype == nt.get_default_dtype()
    np.testing.assert_allclose(out_int.data, out_float.data)


def test_layer_norm_of_integers_is_not_truncated():
    out = nn.LayerNorm(4)(nt.tensor(INT)).data
    assert not np.array_equal(
        out, np.round(out)
    )  # [[-1.34, -0.45, 0.45, 1.34]], not [[-1, 0, 0, 1]]
