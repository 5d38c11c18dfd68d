"""PyTorch's top-level names: tensor methods as functions (``gpugrad.exp(x)`` is ``x.exp()``, as
``torch.exp``), the joining functions, ``set_grad_enabled``, ``inference_mode`` and the dtypes'
other names (``gpugrad.long``, ``gpugrad.int64``, ...). Nothing here computes: each name leads to an
op or a method defined elsewhere."""
from __future__ import annotations

import builtins

import numpy as np

from . import autograd
from .grad_mode import set_grad_enabled  # noqa: F401 -- gpugrad.set_grad_enabled
from .backend import get_backend
from .creation import tensor
from .functional import cat, maximum, minimum, stack, where
from .tensor import Tensor
from .tensor_methods import METHODS_AS_FUNCTIONS

concat = cat
float, double, half = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16)
int8, int16, int32, int64, uint8 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8))
short, int, long, bool = int16, int32, int64, np.dtype(np.bool_)


def _method_as_function(name):
    def function(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"gpugrad.{name}: expected a tensor as the first argument, got {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``gpugrad.{name}(x, ...)`` is ``x.{name}(...)``."
    return function


globals().update({name: _method_as_function(name) for name in METHODS_AS_FUNCTIONS})


class device(str):
    """PyTorch's ``torch.device``: ``device("cuda", 1)`` or ``device("cuda:1")``, with ``.type`` and ``.index``; it is the
    device's name, so everything that takes a device name takes it."""

    def __new__(cls, type, index=None):
        name = str(type) if index is None else f"{type}:{builtins.int(index)}"
        kind, _, number = name.partition(":")
        if kind not in ("cpu", "cuda") or (number and not number.isdigit()) or (kind == "cpu" and number):
            raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {name!r}")
        return super().__new__(cls, name)

    type = property(lambda self: self.partition(":")[0])
    index = property(lambda self: builtins.int(self.partition(":")[2]) if ":" in self else None)

    def __repr__(self):
        return f"device(type={self.type!r}" + (f", index={self.index})" if self.index is not None else ")")


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False) -> builtins.bool:
    """Whether two tensors are equal within the tolerances (reads both to the host)."""
    return np.allclose(np.asarray(a.numpy() if isinstance(a, Tensor) else a),
                       np.asarray(b.numpy() if isinstance(b, Tensor) else b), rtol=rtol, atol=atol, equal_nan=equal_nan)


def linspace(start, end, steps, dtype=np.float32, device=None, requires_grad=False):
    """``steps`` values from ``start`` to ``end``; for an integer dtype, computed in float64 and truncated toward
    zero (PyTorch's; numpy rounds down). bool is refused, as PyTorch does."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        raise TypeError("linspace: dtype bool is not supported (as in PyTorch); use an integer or float dtype")
    values = np.linspace(start, end, steps, dtype=np.float64)
    values = np.trunc(values).astype(dtype) if dtype.kind in "iu" else values.astype(dtype)
    return tensor(values, dtype=dtype, device=device, requires_grad=requires_grad)


def randperm(n, dtype=np.int64, device=None):
    """A random permutation of 0 .. n-1 from the device's generator (``gpugrad.manual_seed``)."""
    backend = get_backend(device)
    return Tensor(backend.asarray(backend.permutation(n)).astype(dtype, copy=False))


inference_mode = autograd.no_grad  # gpugrad has one way to turn recording off

# NOTE: names that would shadow Python's builtins (float, int, bool, sum, abs, all, any, round) are attributes
# (gpugrad.float, gpugrad.sum) but stay out of __all__, so `from gpugrad import *` leaves the builtins alone.
__all__ = [name for name in ["cat", "concat", "stack", "where", "maximum", "minimum", "is_tensor", "allclose", "device",
                             "linspace", "randperm", "set_grad_enabled", "inference_mode", "float", "double", "half",
                             "int8", "int16", "int32", "int64", "uint8", "short", "int", "long", "bool",
                             *METHODS_AS_FUNCTIONS] if not hasattr(builtins, name)]
