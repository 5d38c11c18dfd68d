"""The CPU backend: numpy, with the generic formulas of ``generic.Backend`` and four CPU-only
shortcuts that do the same arithmetic in fewer or faster passes over memory:

- sigmoid as ``1 / (1 + exp(-x))`` in place: one exp and four passes where the generic form (the
  kernels') has two exps and seven. ``exp(-x)`` overflows to inf for x < -88.7 (float32) and the
  quotient is then exactly 0: only results below float32's smallest normal (1.2e-38) are lost,
  where the kernels keep subnormals. The two forms differ by at most 3 ulp elsewhere.
- bias + sigmoid with the bias added and negated in the same pass;
- ReLU as the maximum against a row of zeros, which numpy vectorizes (against the scalar 0 it
  does not: 2.5x slower on 256 x 1024 float32);
- optimizer updates through BLAS axpy/axpby when numpy's OpenBLAS is found (``cpu_blas``): one
  pass per update instead of two or three, spread over the cores.
"""
from __future__ import annotations

import math

import numpy as np

from . import cpu_blas
from .generic import Backend, half_in_float32

_ZERO_ROWS: dict = {}  # (length, dtype char) -> a read-only row of zeros


def _sigmoid_of_negated(t):
    """1 / (1 + exp(t)) in place, for t = -x."""
    with np.errstate(over="ignore"):  # exp(t) = inf -> 1 / inf = 0, the right limit
        np.exp(t, out=t)
    t += 1
    return np.divide(1, t, out=t)  # the same quotient as np.reciprocal, twice as fast in numpy 2.4


class NumpyBackend(Backend):
    kind = "cpu"
    index = 0
    xp = np

    def sigmoid_fwd(self, x, out=None):
        if x.dtype.char == "e":  # float16: computed in float32, rounded once
            return self._sigmoid_half(x, out=out)
        return _sigmoid_of_negated(np.negative(x, out=out))

    @half_in_float32
    def _sigmoid_half(self, x, out=None):
        return _sigmoid_of_negated(np.negative(x, out=out))

    def relu_fwd(self, x, out=None):
        # NOTE: numpy's maximum against a scalar runs 2-4x slower than against an array (98 us
        # against 42 us for 256 x 1024 float32 here): compare with a cached row of zeros instead.
        if x.ndim and x.shape[-1] >= 64 and x.dtype.char in "fd":
            return np.maximum(x, self._zero_row(x.shape[-1], x.dtype), out=out)
        return super().relu_fwd(x, out=out)

    def _zero_row(self, n, dtype):
        row = _ZERO_ROWS.get((n, dtype.char))
        if row is None:
            row = _ZERO_ROWS[(n, dtype.char)] = np.zeros(n, dtype)
            row.flags.writeable = False
        return row

    def bias_act_fwd(self, z, bias, activation):
        if activation != "sigmoid" or z.dtype.char == "e":
            return super().bias_act_fwd(z, bias, activation)
        if bias is None:
            np.negative(z, out=z)
        else:
            np.subtract(np.negative(bias), z, out=z)  # -(z + b) in one pass
        return _sigmoid_of_negated(z)

    # -- optimizer updates through BLAS ------------------------------------------------------------
    def _sgd_one(self, param, grad, state, lr, momentum, dampening, nesterov, weight_decay):
        if param.size < cpu_blas.MIN_ELEMENTS:  # the common small case first: no BLAS lookup
            if not momentum and not weight_decay:
                # NOTE: the generic p -= lr * g, with numpy's own temporary: for small arrays it comes
                # from numpy's allocation cache, cheaper than looking up a scratch buffer (0.7 us).
                param -= lr * grad
                return
            return super()._sgd_one(param, grad, state, lr, momentum, dampening, nesterov, weight_decay)
        blas = cpu_blas.blas()
        buf = state.get("momentum_buffer")
        if blas is None or not blas.applies(grad, param) or (buf is not None and not blas.applies(grad, buf)):
            return super()._sgd_one(param, grad, state, lr, momentum, dampening, nesterov, weight_decay)
        axpby = blas.axpby
        # NOTE: the same update as the generic form, with d = g + wd p expanded so that no array
        # holds d: p -= lr d is p = (1 - lr wd) p - lr g.
        if not momentum:
            axpby(-lr, grad, 1.0 - lr * weight_decay, param)
            return
        if buf is None:  # the first step: b = d
            buf = state["momentum_buffer"] = grad.copy()
            if weight_decay:
                axpby(weight_decay, param, 1.0, buf)
        else:  # b = momentum b + (1 - dampening) d
            axpby(1.0 - dampening, grad, momentum, buf)
            if weight_decay:
                axpby((1.0 - dampening) * weight_decay, param, 1.0, buf)
        if nesterov:  # p -= lr (d + momentum b)
            axpby(-lr, grad, 1.0 - lr * weight_decay, param)
            axpby(-lr * momentum, buf, 1.0, param)
        else:
            axpby(-lr, buf, 1.0, param)

    def _adam_one(self, param, grad, state, step, lr, beta1, beta2, eps, weight_decay, decoupled):
        blas = cpu_blas.blas()
        if blas is None or not blas.applies(grad, param):
            return super()._adam_one(param, grad, state, step, lr, beta1, beta2, eps, weight_decay, decoupled)
        m = state.get("exp_avg")
        v = state.get("exp_avg_sq")
        if m is None or v is None:
            m = state["exp_avg"] = np.zeros_like(param)
            v = state["exp_avg_sq"] = np.zeros_like(param)
        elif not (blas.applies(grad, m) and blas.applies(grad, v)):
            return super()._adam_one(param, grad, state, step, lr, beta1, beta2, eps, weight_decay, decoupled)
        s = self._scratch(state, param)
        if weight_decay and not decoupled:
            np.multiply(param, weight_decay, out=s)
            s += grad
            grad = s  # squared in place below, after m has used it
        blas.axpby(1.0 - beta1, grad, beta1, m)  # m = b1 m + (1 - b1) g
        np.multiply(grad, grad, out=s)
        blas.axpby(1.0 - beta2, s, beta2, v)  # v = b2 v + (1 - b2) g^2
        # NOTE: p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps), PyTorch's form; AdamW's
        # p *= 1 - lr wd goes into the same pass.
        np.sqrt(v, out=s)
        s /= math.sqrt(1 - beta2 ** step)
        s += eps
        np.divide(m, s, out=s)
        blas.axpby(-lr / (1 - beta1 ** step), s, 1.0 - lr * weight_decay if decoupled else 1.0, param)
