"""Reductions: sum, mean, max, min over ``axis=None | int | tuple``, with ``keepdims``."""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..dtypes import accumulator, is_float
from .shape import check_axis


def normalize_axis(axis, ndim: int, op: str, shape=None):
    """The sorted tuple of axes to reduce (a 0-d tensor reduces over nothing, taking axis 0 or -1)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = [check_axis(a, ndim, op, shape) for a in axis]
    else:
        axes = [check_axis(axis, ndim, op, shape)]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(axes)) if ndim else ()


def _expand(grad, input_shape, axes, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input."""
    if not keepdims:
        grad = grad.reshape([1 if i in axes else n for i, n in enumerate(input_shape)])
    return grad


class Sum(Function):
    amp = "float32"
    saves_inputs = ()
    op = "sum"

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim, self.op, x.shape)
        self.saved = (x.shape, x.dtype)
        return self._reduce(x)

    def _reduce(self, x):
        axes = None if len(self.axes) == x.ndim else self.axes  # NOTE: numpy's whole-array sum is the fast one
        wide = accumulator(x.dtype)  # float16 and bfloat16 summed in float32
        if x.dtype.kind == "u":  # PyTorch sums every integer type into int64 (numpy: unsigned into uint64)
            return x.sum(axis=axes, keepdims=self.keepdims, dtype=np.int64)
        if wide is None:
            return x.sum(axis=axes, keepdims=self.keepdims)
        return x.sum(axis=axes, keepdims=self.keepdims, dtype=wide).astype(x.dtype)

    def backward(self, grad_output):
        shape, dtype = self.saved
        grad = grad_output if grad_output.ndim == 0 else _expand(grad_output, shape, self.axes, self.keepdims)
        out = self.backend.xp.empty(shape, dtype=dtype)
        out[...] = grad  # broadcasting assignment
        return out


class Mean(Sum):
    """The mean; a mean over zero elements is NaN (with no warning), as in PyTorch."""
    amp = None
    op = "mean"

    def _reduce(self, x):
        if not is_float(x.dtype):
            raise TypeError(f"mean needs floating-point data, got dtype {x.dtype}; convert with .float()")
        self.count = math.prod([x.shape[a] for a in self.axes])
        wide = accumulator(x.dtype)  # float16 and bfloat16 summed in float32
        total = x.sum(axis=None if len(self.axes) == x.ndim else self.axes, keepdims=self.keepdims, dtype=wide)
        mean = total / (self.count if self.count else np.nan)  # no warning: 0 / NaN is NaN
        return mean if wide is None else mean.astype(x.dtype)

    def backward(self, grad_output):
        return super().backward(grad_output / max(self.count, 1))


class Max(Function):
    """Max over axes; the gradient goes to the maximal elements, split equally among ties."""
    op = "max"

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim, self.op, x.shape)
        empty = [a for a in self.axes if x.shape[a] == 0]
        if empty:
            raise ValueError(f"{self.op}: cannot reduce over axis {empty[0]} of shape {tuple(x.shape)}, "
                             "which has size 0 (PyTorch refuses this too)")
        reduce = x.max if self.op == "max" else x.min
        y = reduce(axis=self.axes, keepdims=True)
        self.saved = (x, y)
        return y if self.keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, grad_output):
        x, y = self.saved
        mask = (x == y)
        count = mask.sum(axis=self.axes, keepdims=True, dtype=grad_output.dtype)
        grad = _expand(grad_output, x.shape, self.axes, self.keepdims)
        return (mask * (grad / count)).astype(x.dtype, copy=False)


class Min(Max):
    """Min over axes; the gradient goes to the minimal elements, split equally among ties."""
    op = "min"


class _ArgReduction:
    """argmax / argmin over one axis (or the flattened tensor): integer indices, no gradient."""
    take_max = True

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def __call__(self, x):
        name = "argmax" if self.take_max else "argmin"
        if x.dtype == np.bool_:
            raise TypeError(f"{name}: does not take a bool tensor (as PyTorch); convert it with .int() first")
        data = x.data
        axis = None if self.axis is None else check_axis(self.axis, x.ndim, name, x.shape) if x.ndim else None
        if x.numel() == 0 and (axis is None or x.shape[axis] == 0):  # over an empty axis; another's gives empty
            raise ValueError(f"{name}: the tensor of shape {x.shape} is empty along the reduced dimension")
        index = data.argmax(axis=axis, keepdims=self.keepdims) if self.take_max else \
            data.argmin(axis=axis, keepdims=self.keepdims)
        return type(x)._make(x.backend.xp.asarray(index, dtype=np.int64), False)


class argmax(_ArgReduction):
    pass


class argmin(_ArgReduction):
    take_max = False


class Cumsum(Function):
    """Running sums along ``axis``; dx = the running sums of dy taken from the end."""
    amp = "float32"
    saves_inputs = ()

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        self.axis = check_axis(self.axis, x.ndim, "cumsum", x.shape)
        if not x.ndim:
            return x.copy() if x.dtype.kind not in "biu" else x.astype(np.int64)
        return x.cumsum(axis=self.axis, dtype=np.int64 if x.dtype.kind == "u" else None)  # PyTorch's int64

    def backward(self, grad_output):
        if not grad_output.ndim:
            return grad_output
        flipped = self.backend.xp.flip(grad_output, axis=self.axis)
        return self.backend.xp.flip(flipped.cumsum(axis=self.axis), axis=self.axis)


class Prod(Function):
    """The product over ``axis`` (all by default); dx = dy * (the product of the others), zeros included."""
    amp = "float32"

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim, "prod", x.shape)
        self.saved = x
        return x.prod(axis=self.axes, keepdims=self.keepdims, dtype=np.int64 if x.dtype.kind == "u" else None)

    def backward(self, grad_output):
        x, xp = self.saved, self.backend.xp
        if x.size == 0:
            return xp.zeros(x.shape, x.dtype)
        moved = xp.moveaxis(x, self.axes, tuple(range(-len(self.axes), 0))) if self.axes else x[..., None]
        lead = moved.shape[:moved.ndim - max(len(self.axes), 1)]
        flat = moved.reshape(lead + (math.prod(moved.shape[len(lead):]),))  # not -1: sizes may be 0
        ones = xp.ones(flat.shape[:-1] + (1,), dtype=x.dtype)
        # NOTE: the product of the others as (exclusive prefix product) * (exclusive suffix product): exact at 0
        before = xp.concatenate([ones, xp.cumprod(flat, axis=-1)[..., :-1]], axis=-1)
        after = xp.flip(xp.concatenate([ones, xp.cumprod(xp.flip(flat, -1), axis=-1)[..., :-1]], axis=-1), -1)
        others = (before * after).reshape(moved.shape)
        others = xp.moveaxis(others, tuple(range(-len(self.axes), 0)), self.axes) if self.axes else others[..., 0]
        return _expand(grad_output, x.shape, self.axes, self.keepdims) * others


def cumsum(x, dim):
    """Running sums along ``dim``."""
    return Cumsum(dim)(x)


class Norm(Function):
    """(sum |x|^p)^(1/p) over ``axes``; dx = dy sign(x) |x|^(p-1) / y^(p-1), and 0 where y = 0."""
    amp = "float32"

    def __init__(self, p, axis, keepdims):
        self.p, self.axis, self.keepdims = float(p), axis, keepdims

    def forward(self, x):
        if not is_float(x.dtype):
            raise TypeError(f"norm needs floating-point data, got dtype {x.dtype}; convert with .float()")
        self.axes = normalize_axis(self.axis, x.ndim, "norm", x.shape)
        y = (abs(x) ** self.p).sum(axis=self.axes, keepdims=True) ** (1 / self.p)
        self.saved = (x, y)
        return y if self.keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, grad_output):
        x, y = self.saved
        xp = self.backend.xp
        with np.errstate(divide="ignore", invalid="ignore"):
            local = xp.sign(x) * abs(x) ** (self.p - 1) / y ** (self.p - 1)
        local = xp.where(y == 0, 0, local).astype(x.dtype, copy=False)
        return _expand(grad_output, x.shape, self.axes, self.keepdims) * local


def norm(x, p=2, dim=None, keepdim=False):
    """The p-norm over ``dim`` (all elements by default); p = inf is the largest |x|."""
    if p in (float("inf"), "inf"):
        return abs(x).max(axis=dim, keepdims=keepdim)
    if not isinstance(p, (int, float)) or p <= 0:
        raise ValueError(f"norm: p must be a positive number or inf, got {p!r}")
    return Norm(p, dim, keepdim)(x)
