"""The activation vocabulary, defined once: each elementwise activation is one entry of ``ACTIVATIONS``: its
name, the code the CUDA kernels dispatch on, its one parameter (with default), and its forward and backward
formulas written once against the array module ``xp``; ``apply_forward`` / ``apply_backward`` run the fused
kernel where it applies, else the formula. No engine import: the CUDA launches (``gpugrad/cuda/kernels.py``)
read this table, and the ops (``activation.py``) stand on it.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..dtypes import LOW_FLOATS, working


def _sigmoid(xp, x, p, out=None):
    # NOTE: 1 / (1 + exp(-x)) keeps full relative accuracy in both tails; exp(-x) overflows to inf
    # below -88.7 (float32), where the quotient 0 replaces a subnormal. One exp, four passes.
    with np.errstate(over="ignore"):
        t = xp.negative(x, out=out)
        xp.exp(t, out=t)
    t += 1
    return xp.divide(1, t, out=t)


def _sigmoid_grad(xp, y, g, p):
    gx = xp.subtract(1, y)  # (1 - y) * y * dy: the kernel's order of rounding
    gx *= y
    gx *= g
    return gx


def _relu(xp, x, p, out=None):
    return xp.maximum(x, x.dtype.type(0), out=out)  # NaN propagates


def _relu_grad(xp, y, g, p):
    # NOTE: dy * (y > 0), not where(y > 0, dy, 0): a NaN or inf upstream stays visible (NaN).
    return xp.multiply(g, y > 0)


def _tanh_grad(xp, y, g, p):
    gx = xp.multiply(y, y)
    xp.subtract(1, gx, out=gx)
    gx *= g
    return gx


def _assign(xp, value, out):
    if out is None:
        return value
    xp.copyto(out, value)
    return out


def _leaky_relu(xp, x, p, out=None):
    return _assign(xp, xp.where(x > 0, x, x * x.dtype.type(p)), out)


def _leaky_relu_grad(xp, y, g, p):
    return xp.where(y > 0, g, g * g.dtype.type(p))  # for a slope >= 0, y > 0 exactly where x > 0


def _elu(xp, x, p, out=None):
    return _assign(xp, xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * x.dtype.type(p)), out)


def _elu_grad(xp, y, g, p):
    return xp.where(y > 0, g, g * (y + y.dtype.type(p)))  # NOTE: alpha e^x = y + alpha for x <= 0


class Activation(NamedTuple):
    name: str
    code: int  # what the kernels dispatch on (kernels/common.cuh, passed as -DGPUGRAD_ACT_<NAME>)
    parameter: str | None  # its one parameter, if any
    default: float
    forward: Callable  # (xp, x, param, out=None) -> y
    backward: Callable  # (xp, y, dy, param) -> dx, from the saved output
    check: Callable = lambda p: True  # which parameter values are valid


ACTIVATIONS = {a.name: a for a in (
    Activation("relu", 1, None, 0.0, _relu, _relu_grad),
    Activation("sigmoid", 2, None, 0.0, _sigmoid, _sigmoid_grad),
    Activation("tanh", 3, None, 0.0, lambda xp, x, p, out=None: xp.tanh(x, out=out), _tanh_grad),
    Activation("leaky_relu", 4, "negative_slope", 0.01, _leaky_relu, _leaky_relu_grad,
               lambda p: 0 <= p < float("inf")),
    Activation("elu", 5, "alpha", 1.0, _elu, _elu_grad, lambda p: 0 < p < float("inf")),
)}


def activation_code(name) -> int:
    return 0 if name is None else ACTIVATIONS[name].code


def activation_param(name, value=None, op=None) -> float:
    """The parameter of activation ``name`` (its default when ``value`` is None), checked."""
    if name is not None and name not in ACTIVATIONS:
        raise ValueError(f"{op or 'activation'}: unknown activation {name!r}; choose from None, "
                         + ", ".join(repr(n) for n in ACTIVATIONS))
    if name is None or ACTIVATIONS[name].parameter is None:
        if value is not None:
            raise ValueError(f"{op or name}: activation {name!r} takes no parameter, got {value!r}")
        return 0.0
    entry = ACTIVATIONS[name]
    value = entry.default if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not entry.check(float(value)):
        raise ValueError(f"{op or name}: {entry.parameter} must be a finite number"
                         f"{' >= 0' if name == 'leaky_relu' else ' > 0'}, got {value!r}")
    return float(value)


def keyword_param(name, param: dict, op: str) -> float:
    """The parameter given by keyword (``negative_slope=0.1``) for activation ``name``, checked."""
    expected = ACTIVATIONS[name].parameter if name in ACTIVATIONS else None
    if param and (len(param) > 1 or next(iter(param)) != expected):
        raise ValueError(f"{op}: activation {name!r} takes {'no parameter' if expected is None else repr(expected)}, "
                         f"got {sorted(param)}")
    return activation_param(name, next(iter(param.values()), None), op)


def apply_forward(backend, name, x, param, out=None):
    """act(x) on ``backend``: the fused kernel where it applies, else the formula (float16 in float32)."""
    y = backend.kernels and backend.kernels.activation_forward(name, x, param, out)
    if y is not None:
        return y
    if x.dtype in LOW_FLOATS:
        return _assign(backend.xp, ACTIVATIONS[name].forward(backend.xp, working(x), param).astype(x.dtype), out)
    return ACTIVATIONS[name].forward(backend.xp, x, param, out)


def apply_backward(backend, name, y, grad_output, param):
    """dx from the saved output: the fused kernel where it applies, else the formula."""
    gx = backend.kernels and backend.kernels.activation_backward(name, y, grad_output, param)
    if gx is not None:
        return gx
    if y.dtype is grad_output.dtype and y.dtype not in LOW_FLOATS:
        return ACTIVATIONS[name].backward(backend.xp, y, grad_output, param)
    gx = ACTIVATIONS[name].backward(backend.xp, working(y), working(grad_output), param)
    return gx.astype(y.dtype, copy=False)
