"""The CPU backend: numpy, with the generic formulas of ``generic.Backend``.

numpy runs an elementwise ufunc on one core, while the GEMMs use every core through BLAS. For
large arrays this backend splits the fused elementwise operations (activations, bias +
activation, optimizer updates) into contiguous chunks run on a small thread pool: numpy releases
the GIL inside ufuncs, so the chunks run in parallel.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .generic import Backend

PARALLEL_MIN = 1 << 17  # elements below which one thread is faster than the pool's dispatch


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class NumpyBackend(Backend):
    kind = "cpu"
    index = 0
    xp = np

    def __init__(self):
        super().__init__()
        self.threads = min(_cores(), 8)
        self._pool = None

    # -- the pool -----------------------------------------------------------------------------
    def _parallel(self, *arrays) -> bool:
        first = arrays[0]
        return (self.threads > 1 and first.size >= PARALLEL_MIN
                and all(a.flags.c_contiguous and a.dtype == first.dtype for a in arrays))

    def _map(self, fn, n: int, align: int = 1) -> None:
        """fn(slice) for ``self.threads`` contiguous slices of range(n) (boundaries on multiples of align)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="gpugrad-cpu")
        step = -(-n // self.threads // align) * align
        slices = [slice(start, min(start + step, n)) for start in range(0, n, step)]
        for future in [self._pool.submit(fn, s) for s in slices]:
            future.result()

    def _chunked(self, method, arrays, out, takes_out, **params):
        flat = [a.reshape(-1) for a in arrays]
        out = np.empty_like(arrays[0]) if out is None else out
        out_flat = out.reshape(-1)

        def run(s):
            if takes_out:
                method(self, *[f[s] for f in flat], out=out_flat[s], **params)
            else:
                out_flat[s] = method(self, *[f[s] for f in flat], **params)
        self._map(run, arrays[0].size)
        return out

    # -- elementwise activations ------------------------------------------------------------
    def _fwd(self, name, x, out, **params):
        method = getattr(Backend, name)
        if not self._parallel(x) or (out is not None and not out.flags.c_contiguous):
            return method(self, x, out=out, **params)
        return self._chunked(method, (x,), out, True, **params)

    def _bwd(self, name, y, grad_output, **params):
        method = getattr(Backend, name)
        if not self._parallel(y, grad_output):
            return method(self, y, grad_output, **params)
        return self._chunked(method, (y, grad_output), None, False, **params)

    def sigmoid_fwd(self, x, out=None):
        return self._fwd("sigmoid_fwd", x, out)

    def sigmoid_bwd(self, y, grad_output):
        return self._bwd("sigmoid_bwd", y, grad_output)

    def relu_fwd(self, x, out=None):
        return self._fwd("relu_fwd", x, out)

    def relu_bwd(self, y, grad_output):
        return self._bwd("relu_bwd", y, grad_output)

    def tanh_fwd(self, x, out=None):
        return self._fwd("tanh_fwd", x, out)

    def tanh_bwd(self, y, grad_output):
        return self._bwd("tanh_bwd", y, grad_output)

    def leaky_relu_fwd(self, x, negative_slope=0.01, out=None):
        return self._fwd("leaky_relu_fwd", x, out, negative_slope=negative_slope)

    def leaky_relu_bwd(self, y, grad_output, negative_slope=0.01):
        return self._bwd("leaky_relu_bwd", y, grad_output, negative_slope=negative_slope)

    def elu_fwd(self, x, alpha=1.0, out=None):
        return self._fwd("elu_fwd", x, out, alpha=alpha)

    def elu_bwd(self, y, grad_output, alpha=1.0):
        return self._bwd("elu_bwd", y, grad_output, alpha=alpha)

    # -- bias + activation, by rows -------------------------------------------------------------
    def bias_act_fwd(self, z, bias, activation):
        if z.ndim < 1 or not self._parallel(z):
            return Backend.bias_act_fwd(self, z, bias, activation)
        rows = z.reshape(-1, z.shape[-1])
        self._map(lambda s: Backend.bias_act_fwd(self, rows[s], bias, activation), rows.shape[0])
        return z

    def bias_act_bwd(self, y, grad_output, activation, need_bias):
        if y.ndim < 1 or not self._parallel(y, grad_output):
            return Backend.bias_act_bwd(self, y, grad_output, activation, need_bias)
        cols = y.shape[-1]
        y2, g2 = y.reshape(-1, cols), grad_output.reshape(-1, cols)
        grad_pre = np.empty_like(y)
        pre2 = grad_pre.reshape(-1, cols)
        partial = {}

        def run(s):
            pre2[s], partial[s.start] = Backend.bias_act_bwd(self, y2[s], g2[s], activation, need_bias)
        self._map(run, y2.shape[0])
        if not need_bias:
            return grad_pre, None
        accumulate = np.float32 if y.dtype == np.float16 else y.dtype
        grad_bias = sum((partial[k].astype(accumulate) for k in sorted(partial)), np.zeros(cols, accumulate))
        return grad_pre, grad_bias.astype(y.dtype, copy=False)

    # -- optimizer updates, by chunks of each large parameter ------------------------------------
    def _sgd_one(self, param, grad, state, lr, momentum, dampening, nesterov, weight_decay):
        first_momentum = momentum and state.get("momentum_buffer") is None
        if first_momentum or not self._parallel(param, grad):
            return Backend._sgd_one(self, param, grad, state, lr, momentum, dampening, nesterov, weight_decay)
        self._chunked_state(lambda p, g, s: Backend._sgd_one(self, p, g, s, lr, momentum, dampening, nesterov,
                                                             weight_decay), param, grad, state)

    def _adam_one(self, param, grad, state, step, lr, beta1, beta2, eps, weight_decay, decoupled):
        if not self._parallel(param, grad):
            return Backend._adam_one(self, param, grad, state, step, lr, beta1, beta2, eps, weight_decay, decoupled)
        state.setdefault("exp_avg", np.zeros_like(param))
        state.setdefault("exp_avg_sq", np.zeros_like(param))
        self._chunked_state(lambda p, g, s: Backend._adam_one(self, p, g, s, step, lr, beta1, beta2, eps,
                                                              weight_decay, decoupled), param, grad, state)

    def _chunked_state(self, update, param, grad, state):
        """update(param chunk, grad chunk, state of views into the same chunk of every buffer)."""
        self._scratch(state, param)
        if "scratch2" in state or state.get("momentum_buffer") is not None:
            state.setdefault("scratch2", np.empty_like(param))
        buffers = {k: v.reshape(-1) for k, v in state.items() if isinstance(v, np.ndarray) and v.shape == param.shape}
        flat_param, flat_grad = param.reshape(-1), grad.reshape(-1)
        self._map(lambda s: update(flat_param[s], flat_grad[s], {k: v[s] for k, v in buffers.items()}), param.size)
