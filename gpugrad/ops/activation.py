"""Activations: the vocabulary (defined once), their formulas, and softmax / log-softmax.

Each elementwise activation is one entry of ``ACTIVATIONS``: its name, the code the CUDA kernels
dispatch on, its one parameter (with default), and its forward and backward formulas written
once against the array module ``xp``. Backward works from the saved output: sigmoid's gradient
is ``dy * y * (1 - y)``, tanh's ``dy * (1 - y*y)``, ReLU's ``dy * (y > 0)``. On the GPU the op calls
the fused kernel (``gpugrad/cuda/kernels.py``) beside the formula; where it does not apply
(dtype, layout, size), the formula runs there too. float16 is computed in float32.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ..autograd import Function
from ..dtypes import LOW_FLOATS, working
from .shape import check_axis


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


class Elementwise(Function):
    """y = act(x); saves y, and dx = act'(y) dy. One class for the whole vocabulary."""
    promotes = "float"  # an integer input is computed as float32
    saves_inputs = ()
    saves_output = True

    def __init__(self, name, param=None):
        self.activation = name
        self.param = activation_param(name, param)

    @property
    def name(self) -> str:
        return {"relu": "ReLU", "elu": "ELU", "leaky_relu": "LeakyReLU"}.get(self.activation,
                                                                             self.activation.capitalize())

    def forward(self, x):
        if not x.ndim:  # NOTE: 0-d goes through as shape (1,): numpy ufuncs turn 0-d results into scalars
            self.saved = apply_forward(self.backend, self.activation, x.reshape(1), self.param)
            return self.saved.reshape(())
        self.saved = apply_forward(self.backend, self.activation, x, self.param)
        return self.saved

    def backward(self, grad_output):
        y = self.saved
        if y.shape == grad_output.shape:
            return apply_backward(self.backend, self.activation, y, grad_output, self.param)
        return apply_backward(self.backend, self.activation, y, grad_output.reshape(y.shape), self.param) \
            .reshape(grad_output.shape)  # a 0-d input, computed as shape (1,)


class ReLU(Elementwise):
    """max(0, x); integer tensors stay integer (PyTorch's rule)."""
    promotes = None

    def __init__(self):
        super().__init__("relu")

    def forward(self, x):
        if x.dtype.kind in "iub":
            return self.backend.xp.maximum(x, x.dtype.type(0))
        return super().forward(x)


class Softmax(Function):
    """exp(x - max) / sum(exp(x - max)) along ``axis``; saves y, dx = y * (dy - sum(dy * y))."""
    amp = "float32"
    promotes = "float"
    saves_inputs = ()
    saves_output = True
    log = False
    op = "softmax"

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = self.backend.xp
        self.axis = check_axis(self.axis, x.ndim, self.op, x.shape)
        if x.size == 0:
            self.saved = x.copy()
            return self.saved
        w = working(x)
        shifted = w - w.max(axis=self.axis, keepdims=True)
        if self.log:
            y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        else:
            y = xp.exp(shifted)
            y /= y.sum(axis=self.axis, keepdims=True)
        self.saved = y.astype(x.dtype, copy=False)
        return self.saved

    def backward(self, grad_output):
        y, g = working(self.saved), working(grad_output)
        if self.log:  # NOTE: dx = dy - softmax(x) * sum(dy)
            gx = g - self.backend.xp.exp(y) * g.sum(axis=self.axis, keepdims=True)
        else:
            gx = y * (g - (g * y).sum(axis=self.axis, keepdims=True))
        return gx.astype(grad_output.dtype, copy=False)


class LogSoftmax(Softmax):
    """x - max - log(sum(exp(x - max))) along ``axis``; stable for huge inputs."""
    log = True
    op = "log_softmax"


def _erf(xp, x):
    """erf elementwise: CuPy's and scipy's where present, else Python's math.erf per element."""
    if xp is not np:
        from cupyx.scipy.special import erf
        return erf(x)
    try:
        from scipy.special import erf
    except ImportError:
        return np.frompyfunc(math.erf, 1, 1)(x).astype(x.dtype)
    return erf(x)


class FromInput(Function):
    """Activations whose gradient needs the input (GELU, SiLU, Softplus): save x; xp formulas only."""
    promotes = "float"

    def __init__(self, name, approximate="none", beta=1.0, threshold=20.0):
        if name == "gelu" and approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.kind, self.approximate, self.beta, self.threshold = name, approximate, float(beta), float(threshold)

    @property
    def name(self) -> str:
        return {"gelu": "GELU", "silu": "SiLU", "softplus": "Softplus"}[self.kind]

    def forward(self, x):
        self.saved = x
        xp, w = self.backend.xp, working(x).reshape(x.shape or (1,))  # NOTE: 0-d as (1,): ufunc out= needs arrays
        with np.errstate(over="ignore"):
            if self.kind == "silu":
                y = w * _sigmoid(xp, w, 0.0)
            elif self.kind == "softplus":
                z = w * self.beta
                y = xp.where(z > self.threshold, w, (xp.log1p(xp.exp(-xp.abs(z))) + xp.maximum(z, 0)) / self.beta)
            elif self.approximate == "tanh":
                y = 0.5 * w * (1 + xp.tanh(math.sqrt(2 / math.pi) * (w + 0.044715 * w ** 3)))
            else:
                y = 0.5 * w * (1 + _erf(xp, w / math.sqrt(2)))
        return y.reshape(x.shape).astype(x.dtype, copy=False)

    def backward(self, grad_output):
        xp, g = self.backend.xp, working(grad_output)
        w = working(self.saved).reshape(self.saved.shape or (1,))
        with np.errstate(over="ignore"):
            if self.kind == "silu":
                s = _sigmoid(xp, w, 0.0)
                local = s * (1 + w * (1 - s))
            elif self.kind == "softplus":
                z = w * self.beta
                local = xp.where(z > self.threshold, 1.0, _sigmoid(xp, z, 0.0))
            elif self.approximate == "tanh":
                c = math.sqrt(2 / math.pi)
                t = xp.tanh(c * (w + 0.044715 * w ** 3))
                local = 0.5 * (1 + t) + 0.5 * w * (1 - t * t) * c * (1 + 3 * 0.044715 * w * w)
            else:
                local = 0.5 * (1 + _erf(xp, w / math.sqrt(2))) + w * xp.exp(-0.5 * w * w) / math.sqrt(2 * math.pi)
        return (g * local.reshape(g.shape)).astype(grad_output.dtype, copy=False)


def dropout_probability(p) -> float:
    """``p`` checked: a number in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a number in [0, 1], got {p!r}")
    return float(p)


class Dropout(Function):
    """y = act(x) * mask / (1 - p) (``activation`` None: y = x * mask / (1 - p)), mask ~ Bernoulli(1 - p)
    from the device's seeded generator; saves the scaled mask (and act(x)), dx = act'(dy * mask / (1 - p)).
    On a GPU one kernel draws the mask, applies the activation and the mask (``kernels/dropout.cu``:
    counter-based, so a captured step draws anew at every replay)."""
    saves_inputs = ()
    promotes = "float"

    def __init__(self, p, activation=None, param=None):
        """``param``: the activation's parameter as ``keyword_param`` checked it (None: the default)."""
        self.p, self.activation = p, activation
        self.param = activation_param(activation, None, "dropout") if param is None else param

    @property
    def name(self) -> str:
        return "Dropout" if self.activation is None else f"{Elementwise(self.activation).name}+Dropout"

    def forward(self, x):
        backend = self.backend
        fused = backend.kernels and backend.kernels.dropout(x, self.p, backend.dropout_state, self.activation,
                                                            self.param)  # one pass, drawn on the GPU
        if fused:
            y, scaled, activated = fused
            self.saved = (scaled, activated)
            return y
        activated = None if self.activation is None else apply_forward(backend, self.activation, x, self.param)
        keep = backend.rand(x.shape, np.float32) >= self.p
        scaled = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self.saved = (scaled, activated)
        return (x if activated is None else activated) * scaled

    def backward(self, grad_output):
        scaled, activated = self.saved
        grad = grad_output * scaled
        return grad if activated is None else apply_backward(self.backend, self.activation, activated, grad,
                                                             self.param)
