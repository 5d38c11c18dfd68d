"""PyTorch's spellings of tensor methods that gpugrad builds from its own ops (``Tensor`` inherits them).

Each is a composition of differentiable ops (its gradient comes from theirs) or a value-only query
(comparisons, ``isnan``, ``all``: no gradient), and works on every device, under autocast, inside
``gpugrad.compile`` and under data parallel like the ops it uses. ``METHODS_AS_FUNCTIONS`` lists the
ones ``gpugrad`` also offers as functions (``gpugrad.exp(x)`` for ``x.exp()``, as ``torch.exp``).
"""
from __future__ import annotations

import math
import numbers
import weakref

import numpy as np

from . import autograd, operands
from .backend import is_cupy_array
from .dtypes import check_numeric, is_float
from .function import TensorBase, check_device
from .seam import refuse_in_capture
from .ops import activation, arith, elementwise, reduce

METHODS_AS_FUNCTIONS = (
    "max", "min", "diag", "equal", "unique", "bincount", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "abs", "square", "neg", "reciprocal", "sin", "cos", "erf",
    "sign", "floor", "ceil", "round", "tanh", "sigmoid", "relu", "softmax", "log_softmax", "sum", "mean", "prod",
    "amax", "amin", "argmax", "argmin", "var", "std", "logsumexp", "norm", "cumsum", "clamp", "clip", "flatten",
    "squeeze", "unsqueeze", "reshape", "transpose", "permute", "t", "flip", "split", "chunk", "unbind", "narrow",
    "topk", "sort", "argsort", "gather", "scatter_add", "index_select", "masked_fill", "tril", "triu", "matmul",
    "mm", "bmm", "isnan", "isinf", "isfinite", "all", "any", "numel", "eq", "ne", "lt", "le", "gt", "ge")


def _dim(dim, op, ndim):
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim!r} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % max(ndim, 1)


class HookHandle:
    """What ``register_hook`` returns: ``handle.remove()`` takes the hook off."""

    def __init__(self, key, hook):
        self.key, self.hook = key, hook

    def remove(self) -> None:
        hooks = autograd.features.tensor_hooks.get(self.key)
        if hooks is not None and self.hook in hooks:
            hooks.remove(self.hook)
            if not hooks:
                del autograd.features.tensor_hooks[self.key]


class TensorMethods:
    __slots__ = ()  # Tensor keeps its slots (no per-tensor __dict__)

    # -- gradients of intermediate tensors ------------------------------------------------------
    def register_hook(self, hook):
        """``hook(grad)`` runs when this tensor's gradient is computed in backward; it may return a tensor
        to use instead (PyTorch's). Returns a handle with ``remove()``."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: the tensor does not require grad (no gradient flows to it)")
        refuse_in_capture("register_hook()", "register the hook before compiling the step, or run the step eagerly "
                          "(gpugrad.compile(fn, enabled=False))")
        key = id(self)
        if key not in autograd.features.tensor_hooks:
            autograd.features.tensor_hooks[key] = []
            weakref.finalize(self, autograd.features.tensor_hooks.pop, key, None)  # the id may be reused after this one dies
        autograd.features.tensor_hooks[key].append(hook)
        return HookHandle(key, hook)

    def retain_grad(self) -> None:
        """Keep this intermediate tensor's gradient in ``.grad`` after backward (added up over backward calls,
        as a leaf's); a no-op on a leaf, which keeps its gradient anyway."""
        if self.creator is None or getattr(self, "retains_grad", False):
            return
        refuse_in_capture("retain_grad()", "return the tensor from the step and read what you need after it, or run "
                          "the step eagerly (gpugrad.compile(fn, enabled=False))")
        ref = weakref.ref(self)

        def keep(grad):
            tensor = ref()
            if tensor is not None:
                tensor.grad = type(tensor)._make(grad.data.copy(), False) if tensor.grad is None else \
                    type(tensor)._make(tensor.grad.data + grad.data, False)
        keep.retains = True
        self.register_hook(keep)

    @property
    def retains_grad(self) -> bool:
        return any(getattr(h, "retains", False) for h in autograd.features.tensor_hooks.get(id(self), ()))

    # -- elementwise math ---------------------------------------------------------------------
    def log1p(self):
        """log(1 + x), exact for small x."""
        return elementwise.Unary("log1p")(self)

    def expm1(self):
        """exp(x) - 1, exact for small x."""
        return elementwise.Unary("expm1")(self)

    def rsqrt(self):
        return elementwise.Unary("rsqrt")(self)

    def reciprocal(self):
        return elementwise.Unary("reciprocal")(self)

    def square(self):
        return self ** 2

    def neg(self):
        return -self

    def pow(self, exponent):
        return self ** exponent

    def add(self, other, alpha=1):
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, alpha=1):
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def maximum(self, other):
        return arith.Maximum()(self, other)

    def minimum(self, other):
        return arith.Minimum()(self, other)

    def softmax(self, dim):
        return activation.Softmax(dim)(self)

    def log_softmax(self, dim):
        return activation.LogSoftmax(dim)(self)

    def matmul(self, other):
        return self @ other

    mm = bmm = matmul

    def clamp_(self, min=None, max=None):
        """In place (no gradient: optimizers, no_grad blocks)."""
        return self.copy_(self.clamp(min, max).detach())

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` (a boolean tensor broadcasting to this one), else this tensor."""
        if getattr(mask, "dtype", None) != np.bool_:
            raise TypeError(f"masked_fill: the mask must be a boolean tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
        return arith.where(mask, value, self)

    def where(self, condition, other):
        """This tensor where ``condition``, else ``other`` (PyTorch's method form of where)."""
        return arith.where(condition, self, other)

    # -- reductions ---------------------------------------------------------------------------
    def amax(self, dim=None, keepdim=False):
        return reduce.Max(dim, keepdim)(self)

    def amin(self, dim=None, keepdim=False):
        return reduce.Min(dim, keepdim)(self)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """The variance over ``dim`` with Bessel's correction by default (``correction=1``; ``unbiased=False``
        or ``correction=0`` for the population variance), as PyTorch; NaN where the divisor is <= 0."""
        if unbiased is not None and correction is not None:
            raise TypeError("var: give unbiased= or correction=, not both")
        correction = (1 if unbiased is None or unbiased else 0) if correction is None else correction
        if not is_float(self.dtype):
            raise TypeError(f"var: needs floating-point data, got dtype {self.dtype}; convert with .float()")
        centred = self - self.mean(dim=dim, keepdim=True).detach()  # the mean's own gradient is zero here
        dims = range(self.ndim) if dim is None else (dim,) if isinstance(dim, numbers.Integral) else dim
        divisor = math.prod(self.shape[_dim(d, "var", self.ndim)] for d in dims) - correction if self.ndim else 1 - correction
        return (centred * centred).sum(dim=dim, keepdim=keepdim) / (divisor if divisor > 0 else float("nan"))

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return arith.Sqrt(zero_at_zero=True)(self.var(dim, unbiased, keepdim, correction=correction))

    def logsumexp(self, dim, keepdim=False):
        """log(sum(exp(x))) over ``dim``, computed with the maximum subtracted (finite for large x)."""
        if self.numel() == 0:  # nothing to shift by (an empty sum: -inf, as PyTorch)
            top = self.sum(dim=dim, keepdim=True).detach()
        else:
            top = reduce.Max(dim, True)(self).detach()
            top = arith.where(top.isfinite(), top, 0.0)  # rows of -inf (or inf) stay -inf (inf) instead of NaN
        with np.errstate(divide="ignore"):  # log(0) = -inf for rows of -inf: the answer, not a mistake
            total = (self - top).exp().sum(dim=dim, keepdim=True).log() + top
        return total if keepdim else total.squeeze(dim=dim)

    def all(self, dim=None, keepdim=False):
        return self._without_grad("all", axis=dim, keepdims=keepdim)

    def any(self, dim=None, keepdim=False):
        return self._without_grad("any", axis=dim, keepdims=keepdim)

    # -- comparisons and tests (boolean tensors, no gradient) -----------------------------------
    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def isnan(self):
        return self._without_grad("isnan")

    def isinf(self):
        return self._without_grad("isinf")

    def isfinite(self):
        return self._without_grad("isfinite")

    def _without_grad(self, name, **kwargs):
        """The array module's ``name`` on the values, as a tensor outside the graph."""
        xp = self.backend.xp
        return type(self)._make(xp.asarray(getattr(xp, name)(self.data, **kwargs)), False)

    # -- pieces and rearrangements (views where they can be) ------------------------------------
    def split(self, split_size_or_sections, dim=0):
        """Pieces of ``split_size_or_sections`` along ``dim`` (the last may be smaller), or of the listed sizes."""
        dim = _dim(dim, "split", self.ndim)
        n = self.shape[dim]
        if isinstance(split_size_or_sections, numbers.Integral):
            size = int(split_size_or_sections)
            if size < 1:
                raise ValueError(f"split: the split size must be >= 1, got {size}")
            sizes = [min(size, n - start) for start in range(0, n, size)] or [0]
        else:
            sizes = [int(s) for s in split_size_or_sections]
            if sum(sizes) != n or min(sizes, default=0) < 0:
                raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of dim {dim} of {self.shape}")
        starts = np.cumsum([0] + sizes[:-1])
        return tuple(self.narrow(dim, int(start), size) for start, size in zip(starts, sizes))

    def chunk(self, chunks, dim=0):
        """At most ``chunks`` pieces of equal size (the last may be smaller) along ``dim``, as PyTorch."""
        if chunks < 1:
            raise ValueError(f"chunk: chunks must be >= 1, got {chunks}")
        n = self.shape[_dim(dim, "chunk", self.ndim)]
        return self.split(max(-(-n // chunks), 1), dim)

    def unbind(self, dim=0):
        dim = _dim(dim, "unbind", self.ndim)
        return tuple(self[(slice(None),) * dim + (i,)] for i in range(self.shape[dim]))

    def narrow(self, dim, start, length):
        dim = _dim(dim, "narrow", self.ndim)
        if -self.shape[dim] <= start < 0:  # PyTorch's: a negative start counts from the end
            start += self.shape[dim]
        if not 0 <= start <= start + length <= self.shape[dim]:
            raise IndexError(f"narrow: [{start}, {start + length}) is outside dim {dim} of size {self.shape[dim]}")
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    def flip(self, dims):
        dims = [_dim(d, "flip", self.ndim) for d in ((dims,) if isinstance(dims, numbers.Integral) else dims)]
        if len(set(dims)) != len(dims):
            raise ValueError(f"flip: a dim appears more than once in {dims}")
        return self[tuple(slice(None, None, -1) if i in dims else slice(None) for i in range(self.ndim))]

    def index_select(self, dim, index):
        dim = _dim(dim, "index_select", self.ndim)
        if isinstance(index, TensorBase):
            check_device("index_select", "index", index, self.backend)
        index = index.data if isinstance(index, TensorBase) else index  # NOTE: a CuPy array's .data is its memory
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise TypeError(f"index_select: the index must be a 1-d integer tensor, got {index.dtype}{tuple(index.shape)}")
        return self[(slice(None),) * dim + (index,)]

    def unflatten(self, dim, sizes):
        dim = _dim(dim, "unflatten", self.ndim)
        return self.reshape(*self.shape[:dim], *sizes, *self.shape[dim + 1:])

    def view_as(self, other):
        return self.view(*other.shape)

    def reshape_as(self, other):
        return self.reshape(*other.shape)

    def expand_as(self, other):
        return self.expand(*other.shape)

    def type_as(self, other):
        return self.astype(other.dtype)

    def t(self):
        return self.T

    def expand(self, *sizes):
        """broadcast_to, with -1 keeping a size."""
        sizes = operands._shape(sizes, "expand")
        lead = len(sizes) - self.ndim
        if lead < 0 or -1 in sizes[:lead]:
            raise ValueError(f"expand: sizes {sizes} for a tensor of shape {self.shape}: -1 keeps an existing "
                             "dimension's size, and new dimensions go in front")
        return self.broadcast_to(tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes)))

    def contiguous(self):
        return self if self.data.flags.c_contiguous else self.clone()

    # -- in-place updates (outside the graph: optimizers, no_grad blocks); each bumps the version --
    def add_(self, other, alpha=1):
        return operands.update_in_place(self, other if alpha == 1 else other * alpha, "add", "add_")

    def sub_(self, other, alpha=1):
        return operands.update_in_place(self, other if alpha == 1 else other * alpha, "subtract", "sub_")

    def copy_(self, source):
        self[...] = source
        return self

    def fill_(self, value):
        self[...] = value
        return self

    def zero_(self):
        return self.fill_(0)

    # -- new tensors like this one (its device; its dtype unless given) -------------------------
    def new_full(self, size, fill_value, dtype=None, requires_grad=False):
        size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
        with self.backend.device_context():
            made = self._wrap(self.backend.xp.full(size, fill_value, dtype=dtype or self.dtype))
        return made.requires_grad_(requires_grad)

    def new_zeros(self, *size, dtype=None, requires_grad=False):
        return self.new_full(size[0] if len(size) == 1 and not isinstance(size[0], int) else size, 0, dtype, requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False):
        return self.new_full(size[0] if len(size) == 1 and not isinstance(size[0], int) else size, 1, dtype, requires_grad)

    def new_tensor(self, data, dtype=None, requires_grad=False):
        """A copy of ``data`` (numbers, lists, an array or a tensor) on this tensor's device, in its dtype."""
        data = data.data if isinstance(data, TensorBase) else data
        array = check_numeric(np.array(data.get() if is_cupy_array(data) else data, dtype=dtype or self.dtype), "new_tensor")
        with self.backend.device_context():
            made = self._wrap(self.backend.asarray(array) if self.backend.kind != "cpu" else array)
        return made.requires_grad_(requires_grad)

    # -- about the storage ----------------------------------------------------------------------
    def is_contiguous(self) -> bool:
        return bool(self.data.flags.c_contiguous)

    def nelement(self) -> int:
        return self.numel()

    def element_size(self) -> int:
        return self.dtype.itemsize

    def is_floating_point(self) -> bool:
        return is_float(self.dtype)
