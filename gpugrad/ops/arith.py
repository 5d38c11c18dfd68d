"""Elementwise arithmetic: + - * / **, negation, exp, log, sqrt, abs, maximum, minimum, where."""
from __future__ import annotations

import numpy as np

from ..autograd import Function, TensorBase, sum_to
from ..function import check_device
from ..dtypes import result_type


def _shaped(grad, shape, dtype):
    """Sum a broadcast gradient back to ``shape`` and give it ``dtype`` (nothing to do, the common case, costs nothing)."""
    if grad.shape != shape:
        grad = sum_to(grad, shape)
    return grad if grad.dtype == dtype else grad.astype(dtype)


def _to_input(grad, x):
    """Sum a broadcast gradient back to input ``x`` and give it x's dtype."""
    return _shaped(grad, x.shape, x.dtype)


class Add(Function):
    promotes = "same"
    saves_inputs = ()

    def forward(self, a, b):
        self.saved = (a.shape, a.dtype, b.shape, b.dtype)
        return a + b

    def backward(self, grad_output):
        a_shape, a_dtype, b_shape, b_dtype = self.saved
        ga = _shaped(grad_output, a_shape, a_dtype) if self.needs_input_grad[0] else None
        gb = _shaped(grad_output, b_shape, b_dtype) if self.needs_input_grad[1] else None
        return ga, gb


class Sub(Function):
    promotes = "same"
    saves_inputs = ()

    def forward(self, a, b):
        self.saved = (a.shape, a.dtype, b.shape, b.dtype)
        return a - b

    def backward(self, grad_output):
        a_shape, a_dtype, b_shape, b_dtype = self.saved
        ga = _shaped(grad_output, a_shape, a_dtype) if self.needs_input_grad[0] else None
        gb = -_shaped(grad_output, b_shape, b_dtype) if self.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    promotes = "same"

    def forward(self, a, b):
        self.saved = (a, b)
        return a * b

    def backward(self, grad_output):
        a, b = self.saved
        ga = _to_input(grad_output * b, a) if self.needs_input_grad[0] else None
        gb = _to_input(grad_output * a, b) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """True division: integers are divided as float32 (PyTorch's rule)."""
    promotes = "float"

    def forward(self, a, b):
        self.saved = (a, b)
        return a / b

    def backward(self, grad_output):
        a, b = self.saved
        ga = _to_input(grad_output / b, a) if self.needs_input_grad[0] else None
        gb = _to_input(-grad_output * a / (b * b), b) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """a ** b. PyTorch's conventions at the special points: d/da is 0 where b == 0 (also at a == 0),
    d/db is 0 where a == 0 and b >= 0, and NaN where a < 0."""
    amp = "float32"
    promotes = "same"
    saves_output = True

    def forward(self, a, b):
        if a.dtype.kind in "iu" and b.dtype.kind in "iu" and bool((b < 0).any()):
            raise ValueError("pow: integers to negative integer powers are not allowed; convert with .float()")
        y = a ** b
        self.saved = (a, b, y)
        return y

    def backward(self, grad_output):
        a, b, y = self.saved
        xp = self.backend.xp
        zero = grad_output.dtype.type(0)
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_input_grad[0]:
                ga = _to_input(xp.where(b == 0, zero, grad_output * b * a ** (b - 1)), a)
            if self.needs_input_grad[1]:
                gb = _to_input(xp.where((a == 0) & (b >= 0), zero, grad_output * y * xp.log(a)), b)
        return ga, gb


class Square(Function):
    """x ** 2 (what ``x ** 2`` records): dx = 2 x dy."""
    amp = "float32"

    def forward(self, x):
        self.saved = x
        return x * x

    def backward(self, grad_output):
        x = self.saved
        return (x + x) * grad_output


class Neg(Function):
    saves_inputs = ()

    def forward(self, x):
        if x.dtype.kind == "b":
            raise TypeError("neg: a bool tensor has no negation; use logical not (x == False) or convert first")
        return -x

    def backward(self, grad_output):
        return -grad_output


class Exp(Function):
    amp = "float32"
    promotes = "float"
    saves_inputs = ()
    saves_output = True

    def forward(self, x):
        y = self.backend.xp.exp(x)
        self.saved = y
        return y

    def backward(self, grad_output):
        return grad_output * self.saved


class Log(Function):
    amp = "float32"
    promotes = "float"

    def forward(self, x):
        self.saved = x
        return self.backend.xp.log(x)

    def backward(self, grad_output):
        return grad_output / self.saved


class Sqrt(Function):
    """sqrt(x); dx = dy / (2 y). ``zero_at_zero``: 0 where y = 0 instead of inf * 0 (PyTorch's std: a feature
    with no spread gets no gradient rather than NaN)."""
    promotes = "float"
    saves_inputs = ()
    saves_output = True

    def __init__(self, zero_at_zero=False):
        self.zero_at_zero = zero_at_zero

    def forward(self, x):
        y = self.backend.xp.sqrt(x)
        self.saved = y
        return y

    def backward(self, grad_output):
        if not self.zero_at_zero:
            return grad_output / (2 * self.saved)
        xp, y = self.backend.xp, self.saved
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.where(y > 0, grad_output / (2 * y), xp.zeros_like(grad_output)).astype(grad_output.dtype, copy=False)


class Abs(Function):
    def forward(self, x):
        self.saved = x
        return self.backend.xp.abs(x)

    def backward(self, grad_output):
        return grad_output * self.backend.xp.sign(self.saved)  # abs'(0) = 0


class Maximum(Function):
    """Elementwise max; on ties each input gets half the gradient."""
    promotes = "same"
    take_max = True

    def forward(self, a, b):
        xp = self.backend.xp
        self.saved = (a, b)
        return xp.maximum(a, b) if self.take_max else xp.minimum(a, b)

    def backward(self, grad_output):
        a, b = self.saved
        xp = self.backend.xp
        wins_a = (a > b) if self.take_max else (a < b)
        share = xp.where(wins_a, 1.0, xp.where(a == b, 0.5, 0.0)).astype(grad_output.dtype)
        ga = _to_input(grad_output * share, a) if self.needs_input_grad[0] else None
        gb = _to_input(grad_output * (1 - share), b) if self.needs_input_grad[1] else None
        return ga, gb


class Minimum(Maximum):
    """Elementwise min; on ties each input gets half the gradient."""
    take_max = False


class Where(Function):
    promotes = "same"
    saves_inputs = ()

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        self.saved = (a.shape, a.dtype, b.shape, b.dtype)
        return self.backend.xp.where(self.condition, a, b)

    def backward(self, grad_output):
        a_shape, a_dtype, b_shape, b_dtype = self.saved
        zero = grad_output.dtype.type(0)
        xp = self.backend.xp
        ga = _shaped(xp.where(self.condition, grad_output, zero), a_shape, a_dtype) if self.needs_input_grad[0] else None
        gb = _shaped(xp.where(self.condition, zero, grad_output), b_shape, b_dtype) if self.needs_input_grad[1] else None
        return ga, gb


class Clamp(Function):
    """min(max(x, low), high); the gradient is dy where low <= x <= high, else 0 (PyTorch's rule)."""

    def __init__(self, low=None, high=None):
        if low is None and high is None:
            raise ValueError("clamp: give min, max or both")
        self.low, self.high = low, high

    def forward(self, x):
        self.saved = x
        xp = self.backend.xp
        y = x if self.low is None else xp.maximum(x, self._bound(self.low, x.dtype))
        return y if self.high is None else xp.minimum(y, self._bound(self.high, x.dtype))

    @staticmethod
    def _bound(value, dtype):
        """``value`` in ``dtype``, converted as PyTorch converts a bound: an integer beyond the type's range wraps
        (a uint8 tensor's min=-2 is 254), where numpy would refuse it."""
        return np.asarray(value).astype(dtype)[()] if dtype.kind in "iu" else dtype.type(value)

    def backward(self, grad_output):
        x = self.saved
        if self.low is None:
            return grad_output * (x <= self.high)
        inside = x >= self.low
        return grad_output * (inside if self.high is None else inside & (x <= self.high))


class ClampBounds(Function):
    """clamp with tensor bounds (broadcast): y = min(max(x, low), high). The gradients are PyTorch's: to x where
    low <= x <= high; to low where x < low (and low < high); to high where x > high (or high < low)."""
    promotes = "same"

    def __init__(self, has_low, has_high):
        self.has_low, self.has_high = has_low, has_high

    def forward(self, x, *bounds):
        xp = self.backend.xp
        low = bounds[0] if self.has_low else None
        high = bounds[-1] if self.has_high else None
        self.saved = (x, low, high)
        y = x if low is None else xp.maximum(x, low)
        return y if high is None else xp.minimum(y, high)

    def backward(self, grad_output):
        x, low, high = self.saved
        xp, zero = self.backend.xp, self.backend.xp.zeros_like(grad_output)
        inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            inside = inside & (x >= low)
        if high is not None:
            inside = inside & (x <= high)
        grads = [_shaped(xp.where(inside, grad_output, zero), x.shape, x.dtype) if self.needs_input_grad[0] else None]
        if low is not None:
            to_low = (x < low) & (low < high) if high is not None else x < low
            grads.append(_shaped(xp.where(to_low, grad_output, zero), low.shape, low.dtype)
                         if self.needs_input_grad[1] else None)
        if high is not None:
            to_high = (x > high) | (high < low) if low is not None else x > high
            grads.append(_shaped(xp.where(to_high, grad_output, zero), high.shape, high.dtype)
                         if self.needs_input_grad[-1] else None)
        return tuple(grads)


def clamp(x, low=None, high=None):
    """Values limited to [low, high] (either may be None, a number or a tensor); the result's dtype promotes as
    PyTorch's (an integer tensor clamped to float bounds is float); tensor bounds get their gradients."""
    if low is None and high is None:
        raise ValueError("clamp: give min, max or both")
    if isinstance(low, TensorBase) or isinstance(high, TensorBase):
        bounds = [b if isinstance(b, TensorBase) else x._wrap(x.backend.constant(b, x.dtype)) for b in (low, high)
                  if b is not None]
        return ClampBounds(low is not None, high is not None)(x, *bounds)
    dtype = result_type(x, *(b for b in (low, high) if b is not None))
    return Clamp(low, high)(x if dtype == x.dtype else x.astype(dtype))


def where(condition, a, b):
    """Elementwise ``a`` where ``condition`` else ``b``; the gradient flows to the chosen input. Numbers take
    the device of the tensors given (two numbers: PyTorch's dtype for them)."""
    first = next((v for v in (a, b, condition) if isinstance(v, TensorBase)), None)
    if first is None:
        raise TypeError(f"where: expected a tensor among condition, a and b, got {type(condition).__name__}, "
                        f"{type(a).__name__} and {type(b).__name__}")
    backend = next((v for v in (a, b) if isinstance(v, TensorBase)), first).backend
    if isinstance(condition, TensorBase):
        check_device("where", "condition", condition, backend, of="values", detail=f" (condition "
                     f"{tuple(condition.shape)})")
    cond = condition.data if isinstance(condition, TensorBase) else backend.asarray(condition)
    if not isinstance(a, TensorBase) and not isinstance(b, TensorBase):
        a = first._wrap(backend.asarray(np.asarray(a, dtype=result_type(a, b))))
    return Where(cond.astype(bool, copy=False))(a, b)

