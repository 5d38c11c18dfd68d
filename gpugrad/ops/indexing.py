"""Indexing and rearranging: gather, scatter_add, sort / argsort / topk, tril / triu, pad, repeat,
one_hot. The gradient of a selection goes back where the values came from (added up where an
index repeats); of pad, the unpadded part; of repeat, the sum over the copies."""
from __future__ import annotations

import collections

import numpy as np

from ..autograd import Function, check_values
from ..function import check_device
from ..dtypes import working
from .shape import check_axis


# what sort and topk return, as PyTorch's: a pair with .values and .indices
ValuesIndices = collections.namedtuple("ValuesIndices", ["values", "indices"])


def _index(index, x, op):
    # NOTE: a tensor's array, or the index itself: an array's own .data is its buffer (numpy's memoryview,
    # CuPy's MemoryPointer), never the values
    if isinstance(index, type(x)):
        check_device(op, "index", index, x.backend)
    data = index.data if isinstance(index, type(x)) else index
    data = x.backend.asarray(data) if not isinstance(data, type(x.data)) else data
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be integers, got dtype {data.dtype}")
    return data


def _check_index(op, x_shape, axis, index, src_shape=None, in_range=False):
    """PyTorch's rule for gather's and scatter_add's index: as many dimensions as the input, no larger than it
    apart from ``axis`` (nor than ``src`` anywhere, for scatter_add); values in [0, size of ``axis``), checked
    where the device allows a host read (inside a captured step, at every replay on the CPU)."""
    if index.ndim != len(x_shape):
        raise ValueError(f"{op}: index of shape {tuple(index.shape)} needs {len(x_shape)} dimensions like the input "
                         f"of shape {tuple(x_shape)}")
    for d, n in enumerate(index.shape if index.size else ()):  # an empty index is never too large (PyTorch's)
        if d != axis and n > x_shape[d] or src_shape is not None and n > src_shape[d]:
            raise ValueError(f"{op}: index of shape {tuple(index.shape)} is larger than the input of shape "
                             f"{tuple(x_shape)}" + (f" or the source of shape {tuple(src_shape)}" if src_shape else "")
                             + f" in dimension {d} (dim={axis})")
    size = x_shape[axis] if x_shape else 1
    if in_range:  # indices made by the library itself (argsort's, argmax's, checked labels): no host read
        return

    def check_range():
        if index.size and (bool((index < 0).any()) or bool((index >= size).any())):
            bad = int(index[(index < 0) | (index >= size)].reshape(-1)[0])
            raise IndexError(f"{op}: index {bad} is out of bounds for dimension {axis} with size {size}")
    check_values(check_range)


def _within(x, index, axis):
    """``x`` cut to the index's extent in every dimension but ``axis`` (so that nothing broadcasts)."""
    cut = tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(index.shape))
    return x[cut]


def _put_along(backend, target, axis, index, values):
    """target[..., index[...], ...] += values along ``axis`` (repeated indices add up)."""
    xp = backend.xp
    grids = [xp.arange(n).reshape((1,) * i + (n,) + (1,) * (index.ndim - i - 1)) for i, n in enumerate(index.shape)]
    grids[axis] = index
    backend.scatter_add(target, tuple(grids), values)


class Gather(Function):
    """y[i][j] = x[i][index[i][j]] along ``axis`` (PyTorch's gather); dx adds dy back at the index."""
    saves_inputs = ()

    def __init__(self, axis, index, in_range=False):
        self.axis, self.index, self.in_range = axis, index, in_range

    def forward(self, x):
        self.axis = check_axis(self.axis, x.ndim, "gather", x.shape)
        _check_index("gather", x.shape, self.axis, self.index, in_range=self.in_range)
        self.saved = (x.shape, x.dtype)
        if x.ndim == 0:
            return x.copy()
        if self.index.size == 0:
            return self.backend.xp.empty(self.index.shape, dtype=x.dtype)
        return self.backend.xp.take_along_axis(_within(x, self.index, self.axis), self.index, axis=self.axis)

    def backward(self, grad_output):
        shape, dtype = self.saved
        if not shape:
            return grad_output.copy()
        grad = self.backend.xp.zeros(shape, dtype=dtype)
        if self.index.size == 0:
            return grad
        _put_along(self.backend, grad, self.axis, self.index, grad_output)
        return grad


class ScatterAdd(Function):
    """out = x with src added at ``index`` along ``axis``; dx = dy, dsrc = dy gathered at the index."""
    saves_inputs = ()
    promotes = "same"

    def __init__(self, axis, index):
        self.axis, self.index = axis, index

    def forward(self, x, src):
        self.axis = check_axis(self.axis, x.ndim, "scatter_add", x.shape)
        _check_index("scatter_add", x.shape, self.axis, self.index, src.shape)
        if src.ndim != x.ndim:
            raise ValueError(f"scatter_add: src of shape {tuple(src.shape)} needs {x.ndim} dimensions like the input")
        out = x.copy()
        if self.index.size == 0:
            self.saved = src.shape
            return out
        _put_along(self.backend, out, self.axis, self.index, src[tuple(slice(0, n) for n in self.index.shape)])
        self.saved = src.shape
        return out

    def backward(self, grad_output):
        xp = self.backend.xp
        gsrc = None
        if self.needs_input_grad[1]:
            gsrc = xp.zeros(self.saved, dtype=grad_output.dtype)
            if self.index.size:
                gsrc[tuple(slice(0, n) for n in self.index.shape)] = xp.take_along_axis(
                    _within(grad_output, self.index, self.axis), self.index, self.axis)
        return grad_output, gsrc


def gather(x, dim, index, in_range=False):
    """PyTorch's gather; ``in_range``: the caller made (or checked) the indices, so no host read checks them."""
    return Gather(dim, _index(index, x, "gather"), in_range)(x)


def scatter_add(x, dim, index, src):
    return ScatterAdd(dim, _index(index, x, "scatter_add"))(x, src)


def sort(x, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along ``dim``; values carry the gradient. Ties keep their order (stable), NaN
    sorts as the largest value (last ascending, first descending), as PyTorch's."""
    if x.ndim == 0:  # PyTorch's: the value and index 0
        values, indices = sort(x.reshape(1), 0, descending)
        return ValuesIndices(values.reshape(()), indices.reshape(()))
    indices = argsort(x, dim, descending)
    return ValuesIndices(gather(x, dim, indices, in_range=True), indices)


def argsort(x, dim=-1, descending=False, stable=False):
    """The order that sorts ``x`` along ``dim``, one rule for every dtype (bool, unsigned and signed integers,
    every float): ascending through the array module's stable sort (NaN last), descending as the ascending
    order of the reversed array, reversed (NaN first, ties in their original order) -- never by sorting -x,
    which is wrong for unsigned integers, a signed type's minimum and bool."""
    axis = check_axis(dim, x.ndim, "argsort", x.shape)
    # NOTE: float16 and bfloat16 sorted as their exact float32 values (CuPy's thrust sort has no bfloat16)
    xp, data = x.backend.xp, working(x.data if x.ndim else x.data.reshape(1))
    kind = {"kind": "stable"} if x.backend.kind == "cpu" else {}  # NOTE: CuPy's argsort is stable, takes no kind=
    if not descending:
        order = xp.argsort(data, axis=axis, **kind)
    else:
        reversed_order = xp.argsort(xp.flip(data, axis=axis), axis=axis, **kind)
        order = (data.shape[axis] - 1) - xp.flip(reversed_order, axis=axis)
    return type(x)._make(order.astype(np.int64, copy=False).reshape(x.shape), False)


def topk(x, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, largest first (NaN the largest)."""
    axis = check_axis(dim, x.ndim, "topk", x.shape)
    size = x.shape[axis] if x.ndim else 1
    if x.dtype == np.bool_:
        raise TypeError("topk: does not take a bool tensor (as PyTorch); convert it with .int() first")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= size:
        raise ValueError(f"topk: k={k!r} is out of range for dimension {axis} of size {size}")
    if x.ndim == 0:
        values, indices = topk(x.reshape(1), k, 0, largest, sorted)
        return ValuesIndices(values.reshape(()), indices.reshape(())) if k else ValuesIndices(values, indices)
    indices = argsort(x, axis, descending=largest)
    picked = type(x)._make(indices.data.take(np.arange(k), axis=axis), False)
    return ValuesIndices(gather(x, axis, picked, in_range=True), picked)


class Diag(Function):
    """PyTorch's ``diag``: a 1-d tensor's values on diagonal ``k`` of a square matrix, or a matrix's diagonal ``k``;
    the gradient goes back to the values."""
    saves_inputs = ()

    def __init__(self, diagonal=0):
        if isinstance(diagonal, bool) or not isinstance(diagonal, (int, np.integer)):
            raise TypeError(f"diag: diagonal must be an integer, got {diagonal!r}")
        self.k = int(diagonal)

    def forward(self, x):
        if x.ndim not in (1, 2):
            raise ValueError(f"diag: expected a 1-d or 2-d tensor, got shape {tuple(x.shape)}")
        self.saved = x.shape
        return self.backend.xp.diag(x, self.k).copy()

    def backward(self, grad_output):
        xp, shape = self.backend.xp, self.saved
        if len(shape) == 1:
            return xp.diag(grad_output, self.k).copy()
        grad = xp.zeros(shape, dtype=grad_output.dtype)
        n = grad_output.shape[0]
        grad[xp.arange(n) + max(-self.k, 0), xp.arange(n) + max(self.k, 0)] = grad_output
        return grad


class Triangle(Function):
    """The lower (``upper=False``) or upper triangle of the last two axes from ``diagonal`` on; the
    gradient is masked the same way."""
    saves_inputs = ()

    def __init__(self, diagonal, upper):
        self.diagonal, self.upper = diagonal, upper

    def _mask(self, a):
        if a.ndim < 2:
            raise ValueError(f"{'triu' if self.upper else 'tril'}: needs at least 2 dimensions, got shape {a.shape}")
        xp = self.backend.xp
        return (xp.triu if self.upper else xp.tril)(a, self.diagonal)

    def forward(self, x):
        return self._mask(x)

    def backward(self, grad_output):
        return self._mask(grad_output)


class Pad(Function):
    """PyTorch's ``F.pad``: ``pad`` = (left, right) for the last axis, then for the one before, ...,
    filled with ``value``; the gradient is the part that was not padding."""
    saves_inputs = ()

    def __init__(self, pad, value=0.0):
        if len(pad) % 2 or any(int(p) < 0 for p in pad):
            raise ValueError(f"pad: expected non-negative (left, right) pairs, got {tuple(pad)}")
        self.pad, self.value = tuple(int(p) for p in pad), value

    def forward(self, x):
        pairs = len(self.pad) // 2
        if pairs > x.ndim:
            raise ValueError(f"pad: {pairs} pairs for a tensor of shape {tuple(x.shape)}")
        widths = [(0, 0)] * (x.ndim - pairs) + [(self.pad[2 * i], self.pad[2 * i + 1]) for i in reversed(range(pairs))]
        self.saved = tuple(slice(left, left + n) for (left, _), n in zip(widths, x.shape))
        return self.backend.xp.pad(x, widths, constant_values=self.value)

    def backward(self, grad_output):
        return grad_output[self.saved]


class Repeat(Function):
    """PyTorch's ``repeat`` (numpy's ``tile``); the gradient sums the copies."""
    saves_inputs = ()

    def __init__(self, repeats):
        self.repeats = tuple(int(r) for r in repeats)

    def forward(self, x):
        if len(self.repeats) < x.ndim:
            raise ValueError(f"repeat: {len(self.repeats)} sizes for a tensor of shape {tuple(x.shape)}")
        self.saved = ((1,) * (len(self.repeats) - x.ndim) + tuple(x.shape), x.shape)
        return self.backend.xp.tile(x, self.repeats)

    def backward(self, grad_output):
        padded, shape = self.saved
        split = [n for pair in zip(self.repeats, padded) for n in pair]
        return grad_output.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(shape)


def one_hot(labels, num_classes=-1):
    """(…, num_classes) int64 with a 1 at each label (num_classes -1: the largest label + 1)."""
    data = labels.data
    if data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: labels must be integers, got dtype {data.dtype}")
    classes = int(data.max()) + 1 if num_classes == -1 and data.size else num_classes
    if data.size:
        check_values(lambda: _check_classes(data, classes))
    xp = labels.backend.xp
    return type(labels)._make((data[..., None] == xp.arange(classes)).astype(np.int64), False)


def _check_classes(data, classes):
    if int(data.min()) < 0 or int(data.max()) >= classes:
        raise ValueError(f"one_hot: labels must lie in [0, {classes}), got values from {int(data.min())} "
                         f"to {int(data.max())}")


def tril(x, diagonal=0):
    return Triangle(diagonal, upper=False)(x)


def triu(x, diagonal=0):
    return Triangle(diagonal, upper=True)(x)


def repeat(x, *sizes):
    return Repeat(sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes)(x)
