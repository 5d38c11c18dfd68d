"""Shape and movement: reshape, transpose, broadcast_to, indexing, concatenate, stack, casts, devices."""
from __future__ import annotations

import numpy as np

from ..autograd import Cast, Function, check_values, sum_to  # noqa: F401 -- Cast: the engine's, named here too


class AxisError(ValueError, IndexError):
    """An axis out of range for a tensor's shape (numpy raises ValueError, PyTorch IndexError: both catch it)."""


def check_axis(axis, ndim: int, op: str, shape=None) -> int:
    """``axis`` as an index in 0 .. ndim-1, or an error naming the op, the axis and the shape.
    A 0-d tensor takes axis 0 or -1 (PyTorch's rule)."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: axis must be an integer, got {axis!r} ({type(axis).__name__})")
    bound = max(ndim, 1)
    if not -bound <= axis < bound:
        where = f"shape {tuple(shape)}" if shape is not None else f"{ndim} dimension(s)"
        raise AxisError(f"{op}: axis {axis} is out of range for {where} (valid: {-bound} .. {bound - 1})")
    return int(axis) % bound if ndim else 0


def swapaxes(x, axis1, axis2):
    """``x`` with two axes exchanged (a view)."""
    axis1, axis2 = (check_axis(a, x.ndim, "swapaxes", x.shape) for a in (axis1, axis2))
    if x.ndim == 0:
        return Reshape(())(x)
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose(tuple(axes))(x)


def squeeze(x, axis=None, *, dim=None):
    """Remove axes of size 1: all of them, or those named (a named axis of another size stays, as in PyTorch)."""
    axis = axis if dim is None else dim
    if axis is None:
        return x.reshape(tuple(n for n in x.shape if n != 1))
    axes = {check_axis(a, x.ndim, "squeeze", x.shape) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
    return x.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes or n != 1))


def unsqueeze(x, axis=None, *, dim=None):
    """Insert an axis of size 1 at ``axis`` (in -ndim-1 .. ndim; ``dim`` is the same)."""
    axis = axis if dim is None else dim
    axis = check_axis(axis, x.ndim + 1, "unsqueeze", x.shape)
    return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])


class Reshape(Function):
    saves_inputs = ()
    is_view = True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.saved = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                             f"({x.size} elements) into shape {tuple(self.shape)}") from None

    def backward(self, grad_output):
        return grad_output.reshape(self.saved)


class Transpose(Function):
    saves_inputs = ()
    is_view = True

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        if self.axes == (1, 0) and x.ndim == 2:  # a matrix's transpose (.T): nothing to check
            return x.transpose(1, 0)
        axes = self.axes if self.axes else tuple(reversed(range(x.ndim)))
        if len(axes) != x.ndim:
            raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation for shape {tuple(x.shape)}")
        axes = tuple(check_axis(a, x.ndim, "transpose", x.shape) for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {tuple(self.axes)} are not a permutation for shape {tuple(x.shape)}")
        self.axes = axes
        return x.transpose(self.axes)

    def backward(self, grad_output):
        return grad_output.transpose(tuple(sorted(range(len(self.axes)), key=self.axes.__getitem__)))  # the inverse


class BroadcastTo(Function):
    saves_inputs = ()
    is_view = True

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.saved = (x.shape, x.dtype)
        try:
            return self.backend.xp.broadcast_to(x, self.shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast shape {tuple(x.shape)} to {self.shape}") from None

    def backward(self, grad_output):
        shape, dtype = self.saved
        return sum_to(grad_output, shape).astype(dtype, copy=False)


def _is_basic_index(index) -> bool:
    """Ints, slices, None and Ellipsis only: every element is selected at most once."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis))) and not isinstance(i, bool) for i in items)


class GetItem(Function):
    saves_inputs = ()
    is_view = True

    def __init__(self, index):
        self.index = index
        self.is_view = _is_basic_index(index)

    def forward(self, x):
        self.saved = (x.shape, x.dtype)
        try:
            return x[self.index]
        except IndexError as error:
            raise IndexError(f"indexing a tensor of shape {tuple(x.shape)}: {error}") from None

    def backward(self, grad_output):
        shape, dtype = self.saved
        grad = self.backend.xp.zeros(shape, dtype=dtype)
        if _is_basic_index(self.index):
            grad[self.index] = grad_output
        else:  # repeated integer indices must add up
            self.backend.scatter_add(grad, self.index, grad_output)
        return grad


class Concatenate(Function):
    promotes = "same"
    saves_inputs = ()

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *arrays):
        shapes = [tuple(a.shape) for a in arrays]
        ndim = arrays[0].ndim
        if ndim == 0:
            raise ValueError(f"concatenate: 0-d tensors cannot be concatenated (shapes {shapes}); use stack")
        self.axis = check_axis(self.axis, ndim, "concatenate", shapes[0])
        try:
            y = self.backend.xp.concatenate(arrays, axis=self.axis)
        except ValueError as error:
            raise ValueError(f"concatenate: shapes {shapes} along axis {self.axis}: {error}") from None
        self.saved = shapes
        return y

    def backward(self, grad_output):
        bounds = np.cumsum([s[self.axis] for s in self.saved])[:-1]
        return tuple(self.backend.xp.split(grad_output, [int(b) for b in bounds], axis=self.axis))


class Stack(Function):
    promotes = "same"
    saves_inputs = ()

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *arrays):
        shapes = {tuple(a.shape) for a in arrays}
        if len(shapes) != 1:
            raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
        self.axis = check_axis(self.axis, arrays[0].ndim + 1, "stack", arrays[0].shape)
        return self.backend.xp.stack(arrays, axis=self.axis)

    def backward(self, grad_output):
        xp = self.backend.xp
        count = grad_output.shape[self.axis]
        return tuple(xp.squeeze(part, axis=self.axis) for part in xp.split(grad_output, count, axis=self.axis))


class Clone(Function):
    saves_inputs = ()

    def forward(self, x):
        return x.copy()

    def backward(self, grad_output):
        return grad_output


class ToDevice(Function):
    """Copy to another device; the gradient is copied back."""
    saves_inputs = ()

    def __init__(self, target):
        self.target = target

    def forward(self, x):
        self.source = self.backend
        with self.target.device_context():
            return self.target.asarray(self.source.to_numpy(x) if self.source.kind != "cpu" else x)

    def backward(self, grad_output):
        with self.source.device_context():
            return self.source.asarray(self.target.to_numpy(grad_output) if self.target.kind != "cpu" else grad_output)


class Embedding(Function):
    """Rows of a (num_embeddings, dim) weight picked by integer indices of any shape; the gradient adds
    up repeated rows, and the ``padding_idx`` row gets none (PyTorch's rule)."""
    saves_inputs = ()

    def __init__(self, indices, padding_idx=None):
        self.indices, self.padding_idx = indices, padding_idx

    def forward(self, weight):
        if self.indices.dtype.kind not in "iu":
            raise TypeError(f"embedding: indices must be integers, got dtype {self.indices.dtype}")
        if self.indices.size:
            check_values(lambda: self._check_range(weight.shape[0]))
        self.saved = (weight.shape, weight.dtype)
        return weight[self.indices]

    def _check_range(self, rows):
        if bool((self.indices < 0).any()) or bool((self.indices >= rows).any()):
            raise IndexError(f"embedding: indices must lie in [0, {rows}) for {rows} rows, "
                             f"got values from {int(self.indices.min())} to {int(self.indices.max())}")

    def backward(self, grad_output):
        shape, dtype = self.saved
        grad = self.backend.xp.zeros(shape, dtype=dtype)
        self.backend.scatter_add(grad, self.indices.reshape(-1), grad_output.reshape(-1, shape[1]))
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0
        return grad
