"""``Tensor``: a backend array plus what autodiff needs (``grad``, ``requires_grad``, creator)."""
from __future__ import annotations

import numpy as np

from . import autograd, operands
from .function import TensorBase
from .backend import _CPU, Backend, backend_of, get_backend, is_cupy_array, is_host_array
from .dtypes import FLOAT_DTYPES, bfloat16, check_numeric
from .operands import DeviceMismatchError, _index_data, _shape, as_tensor_like
from .ops import activation, arith, elementwise, indexing, matmul, reduce, shape as shape_ops
from .tensor_idioms import TensorIdioms
from .tensor_methods import TensorMethods


def _operator(function, reflected=False):
    """A Tensor method that records ``function`` (unary, or binary with the operands in either order)."""
    def apply(self, *other):
        return function()(*other, self) if reflected else function()(self, *other)
    apply.__name__ = function.__name__.lower()
    return apply


def _math(kind):
    def apply(self):
        return elementwise.Unary(kind)(self)
    apply.__name__ = kind
    return apply


def _cast(dtype):
    def cast(self):
        return self.astype(dtype)
    cast.__name__ = np.dtype(dtype).name
    return cast


def _reduction(function):
    def reduce_(self, axis=None, keepdims=False, *, dim=None, keepdim=None):
        if dim is not None and axis is not None:
            raise TypeError(f"{function.__name__.lower()}: give axis= or dim=, not both")
        return function(axis if dim is None else dim, keepdims if keepdim is None else keepdim)(self)
    reduce_.__name__ = function.__name__.lower()
    return reduce_


def _comparison(ufunc_name):
    def compare(self, other):
        return self._compare(other, ufunc_name)
    compare.__name__ = ufunc_name
    return compare


def _in_place(ufunc_name, op):
    def update(self, other):
        return operands.update_in_place(self, other, ufunc_name, op)
    update.__name__ = op
    return update


class Tensor(TensorMethods, TensorIdioms, TensorBase):
    """An n-dimensional array on one device, with reverse-mode autodiff.

    ``.data`` is the raw numpy or CuPy array. Changes through the Tensor API (``+=``, ``x[i] = v``,
    ``add_``, optimizer steps) bump the tensor's version, which backward checks; writing into
    ``.data`` directly is not tracked (as with PyTorch's ``.data``).
    """
    __slots__ = ("data", "grad", "requires_grad", "creator", "name", "_version", "__weakref__")
    __array_priority__ = 1000
    __array_ufunc__ = None  # numpy_array + tensor -> Tensor.__radd__, never numpy's loop over tensors

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        if not (isinstance(data, np.ndarray) or is_cupy_array(data)):
            data = np.asarray(data)
        check_numeric(data, "Tensor")
        self.data = data
        self.grad = None
        self.creator = None
        self.name = name
        self._version = [0, 0]  # [changes, clock of the last one]: detached tensors and views share it
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def _wrap(self, data) -> "Tensor":
        """An op's result (never a subclass such as ``Parameter``), made from ``data`` (the engine calls this)."""
        return Tensor._make(data, False)

    @classmethod
    def _make(cls, data, requires_grad: bool):
        tensor = cls.__new__(cls)
        tensor.data = data
        tensor.grad = None
        tensor.creator = None
        tensor.name = None
        tensor._version = [0, 0]
        tensor.requires_grad = requires_grad
        return tensor

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        if flag and self.data.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"requires_grad=True needs floating-point data (float16, bfloat16, float32, float64), got dtype "
                f"{self.data.dtype}"
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

    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: self.backend.name, doc="'cpu' or 'cuda:N'")
    ndim = property(lambda self: self.data.ndim)
    is_leaf = property(lambda self: self.creator is None)

    @property
    def T(self) -> "Tensor":
        if self.data.ndim != 2:
            raise ValueError(f"Tensor.T is for 2-D tensors, got shape {self.shape}; use permute(*axes) or transpose(dim0, dim1)")
        return shape_ops.Transpose((1, 0))(self)

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
        """The same data (and version counter), outside the graph."""
        tensor = Tensor._make(self.data, False)
        tensor._version = self._version
        return tensor

    def clone(self) -> "Tensor":
        """A copy of the data; differentiable."""
        return shape_ops.Clone()(self)

    def view(self, *shape):
        """A reshape that must not copy (PyTorch's ``view``): the data must be contiguous."""
        if not self.data.flags.c_contiguous:
            raise RuntimeError(f"view: the tensor of shape {self.shape} is not contiguous; use reshape()")
        return self.reshape(*shape)

    def numel(self) -> int:
        return int(self.data.size)

    def dim(self) -> int:
        return self.ndim

    def __dlpack__(self, **kwargs):
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    @property
    def version(self) -> int:
        """How many times the data was changed in place through the Tensor API."""
        return self._version[0]

    def zero_grad(self) -> None:
        self.grad = None

    # -- conversion ---------------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        autograd.check_host_read("numpy's conversion of a tensor (np.asarray)")
        if self.data.__class__ is not np.ndarray and not is_host_array(self.data):
            raise TypeError(f"can't convert a tensor on {self.device} to a numpy array: use .numpy() or .cpu() "
                            "to copy it to host memory first")
        if copy is False and dtype is not None and np.dtype(dtype) != self.data.dtype:
            raise ValueError("a copy is needed to convert the tensor to this dtype")
        array = self.data if dtype is None else self.data.astype(dtype, copy=False)
        return array.copy() if copy else array

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
        """A copy on ``device`` (or in a dtype: ``to(np.float64)``); the same tensor if nothing changes."""
        if not isinstance(device, (str, Backend)):
            return self if np.dtype(device) == self.dtype else self.astype(device)
        target = get_backend(device)
        if target is self.backend:
            return self
        return shape_ops.ToDevice(target)(self)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        return self.to(f"cuda:{index}")

    def astype(self, dtype) -> "Tensor":
        """A copy in ``dtype``; differentiable (the gradient comes back in this tensor's dtype)."""
        return shape_ops.Cast(np.dtype(dtype))(self)

    float, double, half = _cast(np.float32), _cast(np.float64), _cast(np.float16)

    def bfloat16(self) -> "Tensor":
        return self.astype(bfloat16())
    long, int, bool = _cast(np.int64), _cast(np.int32), _cast(np.bool_)

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

    __hash__ = object.__hash__  # by identity (== is elementwise), in C: optimizer states are keyed by tensor

    # -- operators ----------------------------------------------------------------------------
    __add__, __radd__ = _operator(arith.Add), _operator(arith.Add, reflected=True)
    __sub__, __rsub__ = _operator(arith.Sub), _operator(arith.Sub, reflected=True)
    __mul__, __rmul__ = _operator(arith.Mul), _operator(arith.Mul, reflected=True)
    __truediv__, __rtruediv__ = _operator(arith.Div), _operator(arith.Div, reflected=True)
    __matmul__, __rmatmul__ = _operator(matmul.MatMul), _operator(matmul.MatMul, reflected=True)
    __rpow__ = _operator(arith.Pow, reflected=True)

    def __pow__(self, other):
        if other.__class__ is int and other == 2:
            return arith.Square()(self)
        return arith.Pow()(self, other)

    def __pos__(self):
        return self

    def _compare(self, other, ufunc_name):
        a, b = as_tensor_like((self, other), ufunc_name)
        return Tensor._make(autograd._as_array(getattr(a.backend.xp, ufunc_name)(a.data, b.data)), False)

    __lt__ = _comparison("less")
    __le__ = _comparison("less_equal")
    __gt__ = _comparison("greater")
    __ge__ = _comparison("greater_equal")
    __eq__ = _comparison("equal")
    __ne__ = _comparison("not_equal")

    def __getitem__(self, index):
        return shape_ops.GetItem(_index_data(index, self))(self)

    # -- methods ------------------------------------------------------------------------------
    # NOTE: numpy's axis= / keepdims= or PyTorch's dim= / keepdim=; max and min split the gradient
    # equally among tied extremes.
    sum, mean = _reduction(reduce.Sum), _reduction(reduce.Mean)
    argmax, argmin = _reduction(reduce.argmax), _reduction(reduce.argmin)

    prod, cumsum, norm = _reduction(reduce.Prod), reduce.cumsum, reduce.norm
    sin, cos, erf, sign, floor, ceil, round = (_math(k) for k in ("sin", "cos", "erf", "sign", "floor", "ceil", "round"))
    gather, scatter_add, sort, argsort, topk = (indexing.gather, indexing.scatter_add, indexing.sort, indexing.argsort,
                                                indexing.topk)
    tril, triu, repeat = indexing.tril, indexing.triu, indexing.repeat
    __mod__, __rmod__ = _operator(elementwise.Remainder), _operator(elementwise.Remainder, reflected=True)
    __floordiv__, __and__, __or__, __xor__ = (elementwise.no_grad_binary(u, op) for u, op in (
        ("floor_divide", "//"), ("bitwise_and", "&"), ("bitwise_or", "|"), ("bitwise_xor", "^")))
    __invert__ = elementwise.invert

    def __rfloordiv__(self, other):
        return elementwise.no_grad_binary("floor_divide", "//")(other, self)

    def __rand__(self, other):
        return elementwise.no_grad_binary("bitwise_and", "&")(other, self)

    def __ror__(self, other):
        return elementwise.no_grad_binary("bitwise_or", "|")(other, self)

    def __rxor__(self, other):
        return elementwise.no_grad_binary("bitwise_xor", "^")(other, self)

    def clamp(self, min=None, max=None):
        """Values limited to [min, max] (either may be None, a number or a tensor); the gradient flows where
        min <= x <= max (and to tensor bounds where they bind)."""
        return arith.clamp(self, min, max)

    clip = clamp

    exp, log, sqrt = _operator(arith.Exp), _operator(arith.Log), _operator(arith.Sqrt)
    abs = __abs__ = _operator(arith.Abs)
    __neg__ = _operator(arith.Neg)

    def sigmoid(self):
        return activation.Elementwise("sigmoid")(self)

    def tanh(self):
        return activation.Elementwise("tanh")(self)

    def relu(self):
        return activation.ReLU()(self)

    def reshape(self, *shape):
        shape = _shape(shape, "reshape")
        return self if shape == self.shape else shape_ops.Reshape(shape)(self)

    def permute(self, *axes):
        """The axes in the given order (a permutation of all of them; none: all reversed)."""
        axes = _shape(axes) if axes else None
        return shape_ops.Transpose(axes)(self)

    def transpose(self, *axes):
        """Two axes: those two exchanged, as PyTorch's ``transpose(dim0, dim1)``; any other number: a
        permutation of all the axes, as numpy's (``permute`` always is one)."""
        return shape_ops.swapaxes(self, *axes) if len(axes) == 2 else self.permute(*axes)

    swapaxes, squeeze, unsqueeze = shape_ops.swapaxes, shape_ops.squeeze, shape_ops.unsqueeze

    def broadcast_to(self, *shape):
        shape = _shape(shape, "broadcast_to")
        return self if shape == self.shape else shape_ops.BroadcastTo(shape)(self)

    # -- in-place updates (outside the graph: optimizers, no_grad blocks); each bumps the version --
    __iadd__ = _in_place("add", "+=")
    __isub__ = _in_place("subtract", "-=")
    __imul__ = _in_place("multiply", "*=")
    __itruediv__ = _in_place("divide", "/=")
    mul_ = _in_place("multiply", "mul_")
    div_ = _in_place("divide", "div_")
    __setitem__ = operands.set_item


