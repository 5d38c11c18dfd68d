"""Activations. Each saves its output (or a mask) and computes the gradient from it.

The elementwise ones call the backend's fused operations: numpy formulas on the CPU, one CUDA
kernel each way on the GPU.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .shape import check_axis


class _Elementwise(Function):
    """y = act(x) through ``backend.<act>_fwd``; dx = ``backend.<act>_bwd(y, dy)``."""
    promotes = "float"  # an integer input is computed as float32
    saves_inputs = ()
    saves_output = True
    activation = ""
    params: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._fwd, cls._bwd = cls.activation + "_fwd", cls.activation + "_bwd"

    def forward(self, x):
        if not x.ndim:  # NOTE: 0-d goes through as shape (1,): numpy ufuncs turn 0-d results into scalars.
            y = getattr(self.backend, self._fwd)(x.reshape(1), **self.params)
            self.saved = y
            return y.reshape(())
        fwd = getattr(self.backend, self._fwd)
        y = self.saved = fwd(x, **self.params) if self.params else fwd(x)
        return y

    def backward(self, grad_output):
        y = self.saved
        if grad_output.shape != y.shape:  # the 0-d case
            return getattr(self.backend, self._bwd)(y, grad_output.reshape(y.shape), **self.params) \
                .reshape(grad_output.shape)
        bwd = getattr(self.backend, self._bwd)
        return bwd(y, grad_output, **self.params) if self.params else bwd(y, grad_output)


class Sigmoid(_Elementwise):
    activation = "sigmoid"


class Tanh(_Elementwise):
    activation = "tanh"


class ReLU(_Elementwise):
    """max(0, x); integer tensors stay integer (PyTorch's rule), floating ones take the fused path."""
    promotes = None
    activation = "relu"

    def forward(self, x):
        if x.dtype.kind in "iu":
            return self.backend.xp.maximum(x, x.dtype.type(0))
        return super().forward(x)


class LeakyReLU(_Elementwise):
    activation = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        if not 0 <= negative_slope < float("inf"):
            raise ValueError(f"leaky_relu: negative_slope must be >= 0, got {negative_slope}")
        self.params = {"negative_slope": float(negative_slope)}


class ELU(_Elementwise):
    activation = "elu"

    def __init__(self, alpha=1.0):
        if not 0 < alpha < float("inf"):
            raise ValueError(f"elu: alpha must be > 0, got {alpha}")
        self.params = {"alpha": float(alpha)}


def _work(x):
    return x.astype(np.float32) if x.dtype == np.float16 else x


def _axis(x, axis, op):
    return check_axis(axis, x.ndim, op, x.shape)


class Softmax(Function):
    promotes = "float"
    saves_inputs = ()
    saves_output = True

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = self.backend.xp
        self.axis = _axis(x, self.axis, "softmax")
        if x.size == 0:
            self.saved = x.copy()
            return self.saved
        w = _work(x)
        e = xp.exp(w - w.max(axis=self.axis, keepdims=True))
        e /= e.sum(axis=self.axis, keepdims=True)
        y = e.astype(x.dtype, copy=False)
        self.saved = y
        return y

    def backward(self, grad_output):
        y = _work(self.saved)
        g = _work(grad_output)
        # NOTE: dx = y * (dy - sum(dy * y)) is the Jacobian-vector product of softmax.
        return (y * (g - (g * y).sum(axis=self.axis, keepdims=True))).astype(grad_output.dtype, copy=False)


class LogSoftmax(Function):
    promotes = "float"
    saves_inputs = ()
    saves_output = True

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        xp = self.backend.xp
        self.axis = _axis(x, self.axis, "log_softmax")
        if x.size == 0:
            self.saved = x.copy()
            return self.saved
        w = _work(x)
        shifted = w - w.max(axis=self.axis, keepdims=True)
        y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        y = y.astype(x.dtype, copy=False)
        self.saved = y
        return y

    def backward(self, grad_output):
        xp = self.backend.xp
        y, g = _work(self.saved), _work(grad_output)
        return (g - xp.exp(y) * g.sum(axis=self.axis, keepdims=True)).astype(grad_output.dtype, copy=False)
