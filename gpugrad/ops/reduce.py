"""Reductions: sum, mean, max, min over ``axis=None | int | tuple``, with ``keepdims``."""
from __future__ import annotations

import numpy as np

from ..autograd import Function


def normalize_axis(axis, ndim: int, op: str):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimension(s)")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def _accumulator(dtype):
    return np.float32 if dtype == np.float16 else None


def _expand(grad, input_shape, axes, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input."""
    if not keepdims:
        shape = [1 if i in axes else n for i, n in enumerate(input_shape)]
        grad = grad.reshape(shape)
    return grad


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim, "sum")
        self.saved = (x.shape, x.dtype)
        return x.sum(axis=self.axes, keepdims=self.keepdims, dtype=_accumulator(x.dtype)).astype(x.dtype, copy=False)

    def backward(self, grad_output):
        shape, dtype = self.saved
        grad = _expand(grad_output, shape, self.axes, self.keepdims)
        out = self.backend.xp.empty(shape, dtype=dtype)
        out[...] = grad  # broadcasting assignment: cheaper than broadcast_to's Python wrapper
        return out


class Mean(Sum):
    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim, "mean")
        self.count = int(np.prod([x.shape[a] for a in self.axes])) if self.axes else 1
        self.saved = (x.shape, x.dtype)
        if x.dtype.kind != "f":
            raise TypeError(f"mean needs floating-point data, got dtype {x.dtype}")
        return x.mean(axis=self.axes, keepdims=self.keepdims, dtype=_accumulator(x.dtype)).astype(x.dtype, copy=False)

    def backward(self, grad_output):
        return super().backward(grad_output / max(self.count, 1))


class Max(Function):
    """Max over axes; the gradient goes to the maximal elements, split equally among ties."""
    op = "max"

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axis(self.axis, x.ndim, self.op)
        if x.size == 0:
            raise ValueError(f"{self.op}: cannot reduce an empty tensor of shape {tuple(x.shape)}")
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
