"""PyTorch's spellings whose meaning differs from numpy's, in one place (``Tensor`` inherits them): ``size()`` is
the shape (``numel()`` the count), ``max(dim)`` / ``min(dim)`` the named pair (values, indices), ``flatten`` joins a
range of dimensions. Each calls ops directly."""
from __future__ import annotations

import numpy as np

from .dtypes import working
from .function import TensorBase, check_device
from .ops import arith, indexing, reduce
from .ops.shape import check_axis


class TensorIdioms:
    __slots__ = ()

    def size(self, dim=None):
        """The shape (a tuple), or the size of dimension ``dim``, as PyTorch's ``size()`` (the element count is
        ``numel()``)."""
        if dim is None:
            return self.shape
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -max(self.ndim, 1) <= dim < max(
                self.ndim, 1) or self.ndim == 0:
            raise IndexError(f"size: dim {dim!r} is out of range for a tensor of shape {self.shape}")
        return self.shape[dim]

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """PyTorch's: the largest value (no ``dim``); with ``dim``, the named pair (values, indices) along it (the
        gradient goes to each index returned); with a tensor, the elementwise maximum. numpy's ``axis=`` gives the
        values alone (and splits the gradient among ties)."""
        return self._extreme(reduce.Max, reduce.argmax, arith.Maximum, dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """As ``max``, for the smallest."""
        return self._extreme(reduce.Min, reduce.argmin, arith.Minimum, dim, keepdim, axis, keepdims)

    def _extreme(self, reduction, arg, elementwise_op, dim, keepdim, axis, keepdims):
        if isinstance(dim, TensorBase):
            return elementwise_op()(self, dim)
        keep = keepdim if keepdims is None else keepdims
        if axis is not None or dim is None:
            if axis is not None and dim is not None:
                raise TypeError(f"{reduction.op}: give dim= or axis=, not both")
            return reduction(axis, keep)(self)
        index = arg(dim, True)(self)
        values = indexing.gather(self, dim, index, in_range=True) if self.ndim else self * 1
        if not keep and self.ndim:
            values, index = values.squeeze(dim), index.squeeze(dim)
        return indexing.ValuesIndices(values, index if self.ndim else index.reshape(()))

    def flatten(self, start_dim=0, end_dim=-1):
        """Joins dimensions start_dim .. end_dim into one (all of them by default), as PyTorch's."""
        if self.ndim == 0:
            return self.reshape(1)
        start = check_axis(start_dim, self.ndim, "flatten", self.shape)
        end = check_axis(end_dim, self.ndim, "flatten", self.shape)
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {self.shape}")
        return self.reshape(*self.shape[:start], -1 if self.numel() else 0, *self.shape[end + 1:]) \
            if start != end else self

    def diag(self, diagonal=0):
        return indexing.Diag(diagonal)(self)

    def equal(self, other) -> bool:
        """True if ``other`` has this tensor's shape and values (NaN equals nothing), as ``torch.equal``."""
        if not isinstance(other, TensorBase):
            raise TypeError(f"equal: expected a tensor, got {type(other).__name__}")
        if other.backend is not self.backend:
            raise ValueError(f"equal: tensors on {self.device} and {other.device}")
        return self.shape == other.shape and bool((self.data == other.data).all())

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        """The distinct values (sorted), and as PyTorch's, optionally the index of each element's value and each
        value's count; ``dim``: distinct slices along it. No gradient."""
        xp, data = self.backend.xp, working(self.data)  # float16 / bfloat16 as exact float32 (CuPy sorts no bfloat16)
        if dim is not None:
            dim = check_axis(dim, self.ndim, "unique", self.shape)
        values, inverse, counts = xp.unique(data, return_inverse=True, return_counts=True, axis=dim)
        values = values.astype(self.dtype, copy=False)
        inverse = inverse.reshape(self.shape if dim is None else (-1,)).astype(np.int64, copy=False)
        results = [self._wrap(values)] + [self._wrap(inverse)] * bool(return_inverse) + \
            [self._wrap(counts.astype(np.int64, copy=False))] * bool(return_counts)
        return results[0] if len(results) == 1 else tuple(results)

    def bincount(self, weights=None, minlength=0):
        """How often each value 0, 1, ... occurs in this 1-d integer tensor (or the sum of ``weights`` there), at
        least ``minlength`` bins, as PyTorch's. No gradient."""
        if self.ndim != 1 or self.dtype.kind not in "iu":
            raise TypeError(f"bincount: expected a 1-d integer tensor, got {self.dtype}{self.shape}")
        if self.numel() and int(self.data.min()) < 0:
            raise ValueError("bincount: the values must be >= 0")
        xp = self.backend.xp
        if isinstance(weights, TensorBase):
            check_device("bincount", "weights", weights, self.backend, plural=True)
        w = None if weights is None else (weights.data if isinstance(weights, TensorBase) else xp.asarray(weights))
        counts = xp.bincount(self.data, weights=w, minlength=minlength)
        return self._wrap(counts.astype(np.int64 if w is None else w.dtype, copy=False))

