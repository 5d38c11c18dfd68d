"""``Tensor``: a backend array plus what autodiff needs (``grad``, ``requires_grad``, creator)."""
from __future__ import annotations

import numbers

import numpy as np

from . import autograd
from .backend import backend_of, get_backend, is_cupy_array
from .backend import _CPU
from .ops import activation, arith, matmul, reduce, shape as shape_ops

FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


class DeviceMismatchError(RuntimeError):
    """An operation got tensors that live on different devices."""


class Tensor:
    __slots__ = ("data", "grad", "requires_grad", "creator", "name", "__weakref__")
    __array_priority__ = 1000  # numpy_array + tensor -> Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        if not (isinstance(data, np.ndarray) or is_cupy_array(data)):
            data = np.asarray(data)
        self.data = data
        self.grad = None
        self.creator = None
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data, requires_grad: bool):
        tensor = cls.__new__(cls)
        tensor.data = data
        tensor.grad = None
        tensor.creator = None
        tensor.name = None
        tensor.requires_grad = requires_grad
        return tensor

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and self.data.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"requires_grad=True needs floating-point data (float16/32/64), got dtype {self.data.dtype}"
            )
        self.requires_grad = bool(flag)
        return self

    # -- properties ---------------------------------------------------------------------------
    @property
    def backend(self):
        return _CPU if self.data.__class__ is np.ndarray else backend_of(self.data)

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> str:
        return self.backend.name

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    @property
    def T(self) -> "Tensor":
        if self.ndim != 2:
            raise ValueError(f"Tensor.T is for 2-D tensors, got shape {self.shape}; use transpose(*axes) or swapaxes")
        return self.transpose(1, 0)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # -- autodiff -----------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad; adds into ``leaf.grad``."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad and has no graph")
        if grad is None:
            data = self.data
            if data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar output, got shape {self.shape}; "
                    "pass grad= with the same shape"
                )
            grad = (_CPU if data.__class__ is np.ndarray else self.backend).unit_gradient(data.shape, data.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else self.backend.asarray(grad, dtype=self.dtype)
            if backend_of(grad) is not self.backend:
                raise DeviceMismatchError(f"backward(): grad on {backend_of(grad).name}, tensor on {self.device}")
            if grad.shape != self.data.shape:
                raise RuntimeError(f"backward(): grad of shape {tuple(grad.shape)} for a tensor of shape {self.shape}")
            grad = grad.astype(self.dtype, copy=False)
        if self.creator is None:
            self.grad = Tensor._make(grad.copy(), False) if self.grad is None else Tensor._make(self.grad.data + grad, False)
            return
        autograd.run_backward(self, grad, retain_graph)

    def detach(self) -> "Tensor":
        return Tensor._make(self.data, False)

    def zero_grad(self) -> None:
        self.grad = None

    # -- conversion ---------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """A host numpy copy of the data."""
        return np.array(self.backend.to_numpy(self.data), copy=True)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.backend.to_numpy(self.data).reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, device) -> "Tensor":
        """A copy on ``device`` (the same tensor if it is already there); differentiable."""
        from .ops.shape import ToDevice
        target = get_backend(device)
        if target is self.backend:
            return self
        return ToDevice(target)(self)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        return self.to(f"cuda:{index}")

    def astype(self, dtype) -> "Tensor":
        from .ops.shape import Cast
        return Cast(np.dtype(dtype))(self)

    def float(self) -> "Tensor":
        return self.astype(np.float32)

    def double(self) -> "Tensor":
        return self.astype(np.float64)

    def half(self) -> "Tensor":
        return self.astype(np.float16)

    def __repr__(self) -> str:
        body = np.array2string(self.backend.to_numpy(self.data), precision=4, threshold=40, edgeitems=3,
                               separator=", ", prefix="tensor(")
        extras = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.creator is not None:
            extras.append(f"grad_fn=<{self.creator.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name='{self.name}'")
        return f"tensor({body}, {', '.join(extras)})"

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, got dtype {self.dtype}")
        return int(self.item())

    def __hash__(self):
        return id(self)

    # -- operators ----------------------------------------------------------------------------
    def __add__(self, other):
        return arith.Add()(self, other)

    def __radd__(self, other):
        return arith.Add()(other, self)

    def __sub__(self, other):
        return arith.Sub()(self, other)

    def __rsub__(self, other):
        return arith.Sub()(other, self)

    def __mul__(self, other):
        return arith.Mul()(self, other)

    def __rmul__(self, other):
        return arith.Mul()(other, self)

    def __truediv__(self, other):
        return arith.Div()(self, other)

    def __rtruediv__(self, other):
        return arith.Div()(other, self)

    def __pow__(self, other):
        if other.__class__ is int and other == 2:
            return arith.Square()(self)
        return arith.Pow()(self, other)

    def __rpow__(self, other):
        return arith.Pow()(other, self)

    def __matmul__(self, other):
        return matmul.MatMul()(self, other)

    def __rmatmul__(self, other):
        return matmul.MatMul()(other, self)

    def __neg__(self):
        return arith.Neg()(self)

    def __pos__(self):
        return self

    def _compare(self, other, ufunc_name):
        a, b = as_tensor_like((self, other), ufunc_name)
        return Tensor._make(getattr(a.backend.xp, ufunc_name)(a.data, b.data), False)

    def __lt__(self, other):
        return self._compare(other, "less")

    def __le__(self, other):
        return self._compare(other, "less_equal")

    def __gt__(self, other):
        return self._compare(other, "greater")

    def __ge__(self, other):
        return self._compare(other, "greater_equal")

    def __eq__(self, other):
        return self._compare(other, "equal")

    def __ne__(self, other):
        return self._compare(other, "not_equal")

    def __getitem__(self, index):
        return shape_ops.GetItem(_index_data(index, self))(self)

    # -- methods ------------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return reduce.Sum(axis, keepdims)(self)

    def mean(self, axis=None, keepdims=False):
        return reduce.Mean(axis, keepdims)(self)

    def max(self, axis=None, keepdims=False):
        """Max over ``axis``; the gradient is split equally among tied maxima."""
        return reduce.Max(axis, keepdims)(self)

    def min(self, axis=None, keepdims=False):
        """Min over ``axis``; the gradient is split equally among tied minima."""
        return reduce.Min(axis, keepdims)(self)

    def exp(self):
        return arith.Exp()(self)

    def log(self):
        return arith.Log()(self)

    def sqrt(self):
        return arith.Sqrt()(self)

    def abs(self):
        return arith.Abs()(self)

    def sigmoid(self):
        return activation.Sigmoid()(self)

    def tanh(self):
        return activation.Tanh()(self)

    def relu(self):
        return activation.ReLU()(self)

    def reshape(self, *shape):
        shape = _shape(shape)
        return self if shape == self.shape else shape_ops.Reshape(shape)(self)

    def transpose(self, *axes):
        axes = _shape(axes) if axes else None
        return shape_ops.Transpose(axes)(self)

    def swapaxes(self, axis1, axis2):
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return shape_ops.Transpose(tuple(axes))(self)

    def broadcast_to(self, *shape):
        shape = _shape(shape)
        return self if shape == self.shape else shape_ops.BroadcastTo(shape)(self)

    def squeeze(self, axis=None):
        if axis is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            axes = {a % self.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
            for a in axes:
                if self.shape[a] != 1:
                    raise ValueError(f"squeeze: axis {a} of shape {self.shape} has size {self.shape[a]}, not 1")
            shape = tuple(n for i, n in enumerate(self.shape) if i not in axes)
        return self.reshape(shape)

    def unsqueeze(self, axis):
        axis = axis % (self.ndim + 1)
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def flatten(self):
        return self.reshape(-1)

    # -- in-place updates (outside the graph: optimizers, no_grad blocks) ---------------------
    def _inplace(self, other, ufunc_name):
        if autograd.is_grad_enabled() and (self.requires_grad or getattr(other, "requires_grad", False)):
            raise RuntimeError(
                "in-place update of a tensor that requires grad while recording a graph; "
                "wrap it in gpugrad.no_grad()"
            )
        value = as_tensor_like((self, other), ufunc_name)[1].data
        getattr(self.backend.xp, ufunc_name)(self.data, value, out=self.data)
        return self

    def __iadd__(self, other):
        return self._inplace(other, "add")

    def __isub__(self, other):
        return self._inplace(other, "subtract")

    def __imul__(self, other):
        return self._inplace(other, "multiply")

    def __itruediv__(self, other):
        return self._inplace(other, "divide")


def as_tensor_like(values, op_name):
    """Turn an op's inputs into tensors on one device; Python scalars take the tensors' dtype."""
    if len(values) == 1 and isinstance(values[0], Tensor):
        return values
    if len(values) == 2:  # fast path: two tensors whose arrays share a type (and so, for numpy, a device)
        a, b = values
        if isinstance(a, Tensor) and isinstance(b, Tensor) and a.data.__class__ is b.data.__class__ and (
                a.data.__class__ is np.ndarray or a.backend is b.backend):
            return values
    if not isinstance(op_name, str):
        op_name = op_name.name  # the Function itself (the hot path passes it; naming it costs nothing there)
    first = None
    for value in values:
        if isinstance(value, Tensor):
            if first is None:
                first = value
            elif value.backend is not first.backend:
                raise DeviceMismatchError(
                    f"{op_name}: expected all tensors on one device, got {first.device} and {value.device}"
                )
    if first is None:
        first = Tensor(np.asarray(values[0], dtype=np.float32 if _is_python_number(values[0]) else None))
    out = []
    for value in values:
        if isinstance(value, Tensor):
            out.append(value)
            continue
        backend = first.backend
        if _is_python_number(value) or isinstance(value, np.generic):
            dtype = first.dtype if first.dtype.kind == "f" or not isinstance(value, float) else np.float32
            out.append(Tensor._make(backend.xp.asarray(value, dtype=dtype), False))
        elif isinstance(value, np.ndarray) or is_cupy_array(value):
            if backend_of(value) is not backend:
                raise DeviceMismatchError(
                    f"{op_name}: got an array on {backend_of(value).name} and a tensor on {first.device}; "
                    "move it explicitly with gpugrad.tensor(..., device=...) or .to()"
                )
            out.append(Tensor._make(value, False))
        elif isinstance(value, (list, tuple)):
            out.append(Tensor._make(backend.asarray(np.asarray(value, dtype=first.dtype)), False))
        else:
            raise TypeError(f"{op_name}: unsupported operand of type {type(value).__name__}")
    return out


def _index_data(index, tensor):
    """Tensors used as indices become arrays on the indexed tensor's device."""
    items = index if isinstance(index, tuple) else (index,)
    converted = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        elif isinstance(item, list):
            item = np.asarray(item)
        if isinstance(item, np.ndarray) and tensor.device != "cpu":
            item = tensor.backend.asarray(item)
        converted.append(item)
    return tuple(converted) if isinstance(index, tuple) else converted[0]


def _is_python_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, np.generic)


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(int(n) for n in shape)


autograd.bind_tensor_type(Tensor, as_tensor_like, _CPU)
