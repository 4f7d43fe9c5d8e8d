"""``Tensor``: a NumPy array that remembers how it was computed.

Every operation on tensors returns a new ``Tensor`` whose ``_parents`` are its inputs and whose
``_backward`` turns the gradient of the output into gradients of the inputs (the chain rule for
that one op). ``loss.backward()`` then walks the graph from the loss back to the leaves
(see ``autograd/engine.py``).

>>> import numtrans as nt
>>> a = nt.tensor([2.0, 3.0], requires_grad=True)
>>> loss = (a * a).sum()          # d(loss)/da = 2a
>>> loss.backward()
>>> a.grad
array([4., 6.], dtype=float32)

The arithmetic itself lives in ``numtrans/ops/``: each op's forward and backward side by side;
every op hands its output array to ``make_result`` (at the end of this file), which records the
graph. ``autograd/engine.py`` only walks it.
"""

from __future__ import annotations

import numpy as np

_default_dtype = [np.dtype(np.float32)]


def set_default_dtype(dtype) -> None:
    """Floating dtype for tensors made from Python numbers (float32 unless changed)."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"default dtype must be float32 or float64, got {dtype}")
    _default_dtype[0] = dtype


def get_default_dtype() -> np.dtype:
    return _default_dtype[0]


def _to_array(data, dtype=None) -> np.ndarray:
    """Python numbers/lists become float32 (or int64/bool); NumPy arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        return np.asarray(data)
    arr = np.asarray(data)
    if arr.dtype == np.float64:
        arr = arr.astype(_default_dtype[0])
    return arr


def _shape_args(args: tuple) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` both mean the shape (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        return tuple(args[0])
    return args


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    Attributes
    ----------
    data : np.ndarray     the values
    grad : np.ndarray     d(loss)/d(self) after ``backward()``, or None
    requires_grad : bool  whether operations on this tensor are recorded
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_op", "_retain")
    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        self.data = _to_array(data, dtype)
        self.grad = None
        self.requires_grad = False
        self._parents = ()
        self._backward = None
        self._op = "leaf"
        self._retain = False
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        return not self._parents

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def requires_grad_(self, mode: bool = True) -> Tensor:
        if mode and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}"
            )
        self.requires_grad = bool(mode)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this intermediate (non-leaf) tensor after backward."""
        self._retain = True

    def numpy(self) -> np.ndarray:
        """The underlying array (shares memory, no copy)."""
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> Tensor:
        """Same values, no history: gradients stop here."""
        return Tensor(self.data)

    def astype(self, dtype) -> Tensor:
        return _sh.astype(self, dtype)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def long(self) -> Tensor:
        return Tensor(self.data.astype(np.int64))

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", precision=4, prefix="tensor(")
        extra = "" if self.dtype == _default_dtype[0] else f", dtype={self.dtype}"
        if self.requires_grad:
            extra += f", grad_fn=<{self._op}>" if self._parents else ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __hash__(self) -> int:  # tensors are identities (== is elementwise)
        return id(self)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    # ------------------------------------------------------------------ autograd
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see ``autograd/engine.py``)."""
        _engine.run_backward(self, grad, retain_graph)

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------------ operators
    def __add__(self, other):
        return _ar.add(self, other)

    def __radd__(self, other):
        return _ar.add(other, self)

    def __sub__(self, other):
        return _ar.sub(self, other)

    def __rsub__(self, other):
        return _ar.sub(other, self)

    def __mul__(self, other):
        return _ar.mul(self, other)

    def __rmul__(self, other):
        return _ar.mul(other, self)

    def __truediv__(self, other):
        return _ar.div(self, other)

    def __rtruediv__(self, other):
        return _ar.div(other, self)

    def __neg__(self):
        return _ar.neg(self)

    def __pow__(self, exponent):
        return _ar.pow(self, exponent)

    def __rpow__(self, base):
        return _ar.pow(base, self)

    def __matmul__(self, other):
        return _la.matmul(self, other)

    def __rmatmul__(self, other):
        return _la.matmul(other, self)

    def __getitem__(self, index):
        return _sh.getitem(self, index)

    # comparisons give boolean tensors without history
    def __lt__(self, other):
        return Tensor(self.data < _to_array(other))

    def __le__(self, other):
        return Tensor(self.data <= _to_array(other))

    def __gt__(self, other):
        return Tensor(self.data > _to_array(other))

    def __ge__(self, other):
        return Tensor(self.data >= _to_array(other))

    def __eq__(self, other):
        return Tensor(self.data == _to_array(other))

    def __ne__(self, other):
        return Tensor(self.data != _to_array(other))

    # ------------------------------------------------------------------ methods
    # Reductions take PyTorch's ``dim=`` / ``keepdim=``; NumPy's ``axis=`` / ``keepdims=`` are
    # accepted as aliases (one or the other, never both), the same on every method.
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _rd.sum(self, _dim(dim, axis), _keep(keepdim, keepdims))

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _rd.mean(self, _dim(dim, axis), _keep(keepdim, keepdims))

    def var(self, dim=None, keepdim=False, correction=1, *, axis=None, keepdims=None):
        return _rd.var(self, _dim(dim, axis), _keep(keepdim, keepdims), correction)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _rd.max(self, _dim(dim, axis), _keep(keepdim, keepdims))

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _rd.min(self, _dim(dim, axis), _keep(keepdim, keepdims))

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return Tensor(np.argmax(self.data, axis=_dim(dim, axis), keepdims=_keep(keepdim, keepdims)))

    def exp(self):
        return _el.exp(self)

    def log(self):
        return _el.log(self)

    def sqrt(self):
        return _el.sqrt(self)

    def abs(self):
        return _el.abs(self)

    def tanh(self):
        return _el.tanh(self)

    def sigmoid(self):
        return _el.sigmoid(self)

    def relu(self):
        return _el.relu(self)

    def clip(self, min=None, max=None):
        return _el.clip(self, min, max)

    clamp = clip

    def masked_fill(self, mask, value):
        return _el.masked_fill(self, mask, value)

    def softmax(self, dim=-1, *, axis=None):
        # imported here, not at the top: functional/ imports this module (the one forced cycle)
        from .functional.activations import softmax

        return softmax(self, _dim(dim, axis, -1))

    def log_softmax(self, dim=-1, *, axis=None):
        from .functional.activations import log_softmax

        return log_softmax(self, _dim(dim, axis, -1))

    def reshape(self, *shape):
        return _sh.reshape(self, _shape_args(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        return _sh.flatten(self, start_dim, end_dim)

    def transpose(self, dim0=-2, dim1=-1):
        return _sh.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _sh.permute(self, _shape_args(dims))

    @property
    def T(self):
        return _sh.permute(self, tuple(reversed(range(self.ndim))))

    def unsqueeze(self, dim):
        return _sh.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _sh.squeeze(self, dim)

    def expand(self, *shape):
        return _sh.expand(self, _shape_args(shape))

    def gather(self, dim=None, index=None, *, axis=None):
        if index is None:
            raise TypeError("gather() needs an index: x.gather(dim, index)")
        return _sh.gather(self, _dim(dim, axis), index)

    def split(self, split_size_or_sections, dim=0, *, axis=None):
        return _sh.split(self, split_size_or_sections, _dim(dim, axis, 0))


def _keep(keepdim, keepdims):
    return bool(keepdim) if keepdims is None else bool(keepdims)


# --------------------------------------------------------------------- the graph, as ops run
def make_result(data: np.ndarray, parents: tuple, backward, op: str):
    """Wrap an op's output: record ``parents`` and ``backward`` if any input requires grad."""
    out = object.__new__(Tensor)  # no __init__: its checks and conversions are not needed here
    out.data = data
    out.grad = None
    out._retain = False
    state = _grad_mode._state
    if state["anomaly"]:
        _engine.check_forward(data, op)
    record = False
    if state["grad_enabled"]:
        for p in parents:  # a plain loop: this runs once per op, and any(generator) is slower
            if p.requires_grad:
                record = True
                break
    if record:
        out.requires_grad = True
        out._parents = parents
        out._backward = backward
        out._op = op
    else:
        out.requires_grad = False
        out._parents = ()
        out._backward = None
        out._op = op
    return out


# The ops modules (and autograd's) import Tensor and make_result, so they come after both exist.
from .autograd import engine as _engine  # noqa: E402
from .autograd import grad_mode as _grad_mode  # noqa: E402
from .ops import arithmetic as _ar  # noqa: E402
from .ops import elementwise as _el  # noqa: E402
from .ops import linalg as _la  # noqa: E402
from .ops import reductions as _rd  # noqa: E402
from .ops import shape as _sh  # noqa: E402

_dim = _sh.dim_or_axis  # the methods above call it when they run, after this line
