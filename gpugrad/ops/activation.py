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

import numpy as np

from ..autograd import Function
from ..backend import is_host_array
from ..dtypes import working
from .formulas import (ACTIVATIONS, Activation, _sigmoid, activation_code, activation_param, apply_backward,  # noqa: F401
                       apply_forward, keyword_param)
from .shape import check_axis


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
    """erf elementwise: CuPy's for a device array, scipy's where present, else Python's math.erf per element. Told by
    the array, not ``xp``: inside a CPU capture ``xp`` is a recording module (it imported cupyx there)."""
    if not is_host_array(x):
        from cupyx.scipy.special import erf
        return erf(x)
    try:
        from scipy.special import erf
    except ImportError:
        y = np.frompyfunc(math.erf, 1, 1)(x)  # a ufunc, so a CPU capture records it; then astype, recorded too
        return y.astype(x.dtype) if is_host_array(y) else np.asarray(y, dtype=x.dtype)  # 0-d: a float
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
