"""More elementwise math: sin, cos, erf, log1p, expm1, rsqrt, reciprocal, sign, rounding, floor
division, remainder, bitwise logic.

Each differentiable function saves its input and writes its derivative next to its value:
sin' = cos, cos' = -sin, erf' = 2/sqrt(pi) exp(-x^2), log1p' = 1 / (1 + x), expm1' = exp(x),
rsqrt' = -rsqrt(x) / (2 x), reciprocal' = -1 / x^2; sign, floor, ceil and round have derivative 0
(PyTorch's convention); ``a % b`` has da = 1, db = -floor(a / b). Floor division and the bitwise
operators return integer or boolean results with no gradient.
"""
from __future__ import annotations

import math

from ..autograd import Function, _as_array, as_tensor_like
from ..dtypes import is_float, result_type
from .activation import _erf
from .arith import _to_input


class Unary(Function):
    """y = f(x) with f' beside f; ``kind`` names which."""
    promotes = "float"
    FORMULAS = {
        "sin": (lambda xp, x: xp.sin(x), lambda xp, x: xp.cos(x)),
        "cos": (lambda xp, x: xp.cos(x), lambda xp, x: -xp.sin(x)),
        "erf": (None, lambda xp, x: (2 / math.sqrt(math.pi)) * xp.exp(-x * x)),
        "log1p": (lambda xp, x: xp.log1p(x), lambda xp, x: 1 / (1 + x)),
        "expm1": (lambda xp, x: xp.expm1(x), lambda xp, x: xp.exp(x)),
        "rsqrt": (lambda xp, x: 1 / xp.sqrt(x), lambda xp, x: -0.5 / (x * xp.sqrt(x))),
        "reciprocal": (lambda xp, x: 1 / x, lambda xp, x: -1 / (x * x)),
        "sign": (lambda xp, x: _sign(xp, x), None),
        "floor": (lambda xp, x: xp.floor(x), None),
        "ceil": (lambda xp, x: xp.ceil(x), None),
        "round": (lambda xp, x: xp.round(x), None),  # halves to even, as PyTorch
    }

    FLOAT32 = ("log1p", "expm1", "rsqrt", "reciprocal")  # computed in float32 under autocast (PyTorch's list)

    def __init__(self, kind):
        self.kind = kind
        if kind in self.FLOAT32:
            self.amp = "float32"

    @property
    def name(self) -> str:
        return self.kind.capitalize()

    def forward(self, x):
        self.saved = x
        if self.kind == "erf":
            return _erf(self.backend.xp, x)
        return self.FORMULAS[self.kind][0](self.backend.xp, x)

    def backward(self, grad_output):
        derivative = self.FORMULAS[self.kind][1]
        if derivative is None:  # piecewise constant
            return self.backend.xp.zeros_like(grad_output)
        return grad_output * derivative(self.backend.xp, self.saved).astype(grad_output.dtype, copy=False)


def _sign(xp, x):
    """-1, 0 or 1; 0 for NaN (PyTorch's, where numpy gives NaN)."""
    y = xp.sign(x)
    return xp.where(xp.isnan(x), xp.zeros_like(y), y) if is_float(x.dtype) else y


class Remainder(Function):
    """a % b with the sign of b (Python's and PyTorch's); da = dy, db = -floor(a / b) dy."""
    promotes = "same"

    def forward(self, a, b):
        self.saved = (a, b)
        return self.backend.xp.remainder(a, b)

    def backward(self, grad_output):
        a, b = self.saved
        ga = _to_input(grad_output, a) if self.needs_input_grad[0] else None
        gb = _to_input(-grad_output * self.backend.xp.floor(a / b), b) if self.needs_input_grad[1] else None
        return ga, gb


def no_grad_binary(ufunc_name, op):
    """``a <op> b`` through the array module's ufunc, with no gradient (floor division, bitwise logic)."""
    def apply(a, b):
        x, y = as_tensor_like((a, b), op)
        if ufunc_name != "floor_divide" and not (x.dtype.kind in "biu" and y.dtype.kind in "biu"):
            raise TypeError(f"{op}: needs bool or integer tensors, got {x.dtype} and {y.dtype}")
        dtype = result_type(x, y)  # PyTorch's promotion (float32 // int32 is float32, not numpy's float64)
        result = getattr(x.backend.xp, ufunc_name)(x.data.astype(dtype, copy=False), y.data.astype(dtype, copy=False))
        return type(x)._make(_as_array(result), False)
    return apply


def invert(x):
    """~x: logical not of a bool tensor, bitwise not of an integer one (no gradient)."""
    if x.dtype.kind not in "biu":
        raise TypeError(f"~: needs a bool or integer tensor, got {x.dtype}")
    return type(x)._make(_as_array(x.backend.xp.invert(x.data)), False)
