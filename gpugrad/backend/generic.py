"""The generic backend: every fused operation written once against ``self.xp``.

The numpy backend uses these as they are; the CuPy backend overrides the fused ones with CUDA
kernels and falls back here for anything the kernels do not take. Keep the formulas identical to
the kernels' so CPU-GPU parity can be tight.
"""
from __future__ import annotations

import math

import numpy as np


def compute_dtype(dtype):
    """Half precision is computed and accumulated in float32."""
    return np.float32 if np.dtype(dtype) == np.float16 else dtype


def half_in_float32(method):
    """Run a generic formula in float32 for float16 arrays (as the kernels do), then round once."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *arrays, out=None, **params):
        if arrays[0].dtype.char != "e":  # not float16 (by char: unpickled arrays carry a copy of the dtype)
            return method(self, *arrays, out=out, **params) if out is not None else method(self, *arrays, **params)
        result = method(self, *[a.astype(np.float32) for a in arrays], **params).astype(np.float16)
        if out is None:
            return result
        self.xp.copyto(out, result)
        return out
    return wrapper


class Backend:
    kind = "cpu"
    index = 0
    xp = np
    array_type = np.ndarray
    _seed = 0  # the last manual_seed(); backends made later start from it

    def __init__(self):
        self.seed(Backend._seed)

    # -- identity -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"

    def __repr__(self):
        return f"<{type(self).__name__} {self.name}>"

    def device_context(self):
        import contextlib
        return contextlib.nullcontext()

    # -- arrays -------------------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array) -> np.ndarray:
        return np.asarray(array)

    def synchronize(self) -> None:
        pass

    def unit_gradient(self, shape, dtype):
        """A cached, never-written array of ones: the implicit gradient of a scalar's backward()."""
        cache = self.__dict__.get("_units")
        if cache is None:
            cache = self._units = {}
        unit = cache.get((shape, dtype))  # the hot path: a tuple shape and an np.dtype, as arrays have them
        if unit is None:
            key = (tuple(shape), np.dtype(dtype))
            unit = cache.get(key)
        if unit is None:
            unit = cache[key] = self.xp.ones(key[0], dtype=key[1])
            if self.xp is np:
                unit.flags.writeable = False
        return unit

    matmul_precision = "highest"  # shared by every backend; see gpugrad.set_matmul_precision

    def apply_matmul_precision(self) -> None:
        pass  # numpy computes float32 GEMMs in float32

    def scatter_add(self, target, index, values) -> None:
        self.xp.add.at(target, index, values)

    def matmul(self, a, b):
        """a @ b; float16 is multiplied and accumulated in float32 (numpy's half matmul is neither fast nor exact)."""
        if a.dtype.char == "e" and b.dtype.char == "e":  # float16
            return self.xp.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.float16)
        return self.xp.matmul(a, b)

    # -- random numbers -----------------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def randn(self, shape, dtype):
        return self.rng.standard_normal(shape, dtype=np.float32 if dtype == np.float16 else dtype).astype(dtype, copy=False)

    def rand(self, shape, dtype):
        return self.rng.random(shape, dtype=np.float32 if dtype == np.float16 else dtype).astype(dtype, copy=False)

    def permutation(self, n: int):
        return self.rng.permutation(n)

    # -- fused elementwise activations: forward from the input, backward from what it saved ---
    @half_in_float32
    def sigmoid_fwd(self, x, out=None):
        # NOTE: e = exp(-|x|); y = (x >= 0 ? 1 : e) / (1 + e), i.e. 1/(1+e) or e/(1+e): no overflow,
        # full relative accuracy in both tails. exp(min(x, 0)) is that numerator (1, or e).
        xp = self.xp
        e = xp.abs(x)
        xp.negative(e, out=e)
        xp.exp(e, out=e)
        e += 1
        numerator = xp.minimum(x, 0, out=out)  # out may be x itself: read x before this line only
        xp.exp(numerator, out=numerator)
        return xp.divide(numerator, e, out=numerator)

    @half_in_float32
    def sigmoid_bwd(self, y, grad_output):
        # NOTE: one fresh array, not three: (1 - y) * y * dy, rounded as dy * y * (1 - y) is.
        gx = self.xp.subtract(1, y)
        gx *= y
        gx *= grad_output
        return gx

    @half_in_float32
    def relu_fwd(self, x, out=None):
        return self.xp.maximum(x, 0, out=out)  # NaN propagates

    @half_in_float32
    def relu_bwd(self, y, grad_output):
        # NOTE: dy * (y > 0), not where(y > 0, dy, 0): a NaN or inf upstream gradient stays visible
        # (NaN) instead of being silently zeroed, and numpy's multiply is ~10x faster than its where.
        return self.xp.multiply(grad_output, y > 0)

    @half_in_float32
    def tanh_fwd(self, x, out=None):
        return self.xp.tanh(x, out=out)

    @half_in_float32
    def tanh_bwd(self, y, grad_output):
        gx = self.xp.multiply(y, y)
        self.xp.subtract(1, gx, out=gx)
        gx *= grad_output
        return gx

    @half_in_float32
    def leaky_relu_fwd(self, x, negative_slope=0.01, out=None):
        y = self.xp.where(x > 0, x, x * self.xp.asarray(negative_slope, dtype=x.dtype))
        return y if out is None else self._assign(out, y)

    @half_in_float32
    def leaky_relu_bwd(self, y, grad_output, negative_slope=0.01):
        # NOTE: for a non-negative slope y > 0 exactly where x > 0, so the output is enough.
        slope = self.xp.asarray(negative_slope, dtype=grad_output.dtype)
        return self.xp.where(y > 0, grad_output, grad_output * slope)

    @half_in_float32
    def elu_fwd(self, x, alpha=1.0, out=None):
        xp = self.xp
        negative_part = xp.expm1(xp.minimum(x, 0)) * xp.asarray(alpha, dtype=x.dtype)
        y = xp.where(x > 0, x, negative_part)
        return y if out is None else self._assign(out, y)

    @half_in_float32
    def elu_bwd(self, y, grad_output, alpha=1.0):
        # NOTE: for x <= 0, d/dx alpha*(e^x - 1) = alpha*e^x = y + alpha.
        a = self.xp.asarray(alpha, dtype=y.dtype)
        return self.xp.where(y > 0, grad_output, grad_output * (y + a))

    def _assign(self, out, value):
        self.xp.copyto(out, value)
        return out

    def activation_fwd(self, activation, x, out=None, **params):
        if activation is None:
            return x if out is None else self._assign(out, x)
        return getattr(self, activation + "_fwd")(x, out=out, **params)

    def activation_bwd(self, activation, y, grad_output, **params):
        if activation is None:
            return grad_output
        return getattr(self, activation + "_bwd")(y, grad_output, **params)

    # -- bias + activation (the epilogue of a linear layer) ------------------------------------
    def bias_act_fwd(self, z, bias, activation):
        """y = act(z + bias), written into z (z is the fresh GEMM output)."""
        if z.dtype == np.float16:  # computed in float32 and rounded once, as the kernel does
            work = z.astype(np.float32)
            self.bias_act_fwd(work, None if bias is None else bias.astype(np.float32), activation)
            self.xp.copyto(z, work, casting="same_kind")
            return z
        if bias is not None:
            self.xp.add(z, bias, out=z)
        return self.activation_fwd(activation, z, out=z)

    def bias_act_bwd(self, y, grad_output, activation, need_bias: bool):
        """(grad_pre, grad_bias): grad_pre = grad_output * act'(y), grad_bias its sum over rows."""
        grad_pre = self.activation_bwd(activation, y, grad_output)
        grad_bias = None
        if need_bias:
            rows = grad_pre.reshape(math.prod(grad_pre.shape[:-1]), grad_pre.shape[-1])
            grad_bias = rows.sum(axis=0, dtype=compute_dtype(rows.dtype)).astype(rows.dtype, copy=False)
        return grad_pre, grad_bias

    # -- softmax + cross-entropy --------------------------------------------------------------
    def checks_labels_on_device(self, logits, labels) -> bool:
        """True where ``softmax_xent`` itself turns out-of-range labels into NaN (the GPU kernel)."""
        return False

    def softmax_xent(self, logits, labels):
        """Mean cross-entropy over rows of (N, C) logits and dlogits = (softmax - onehot) / N."""
        xp = self.xp
        n = logits.shape[0]
        work = logits.astype(compute_dtype(logits.dtype), copy=False)
        shifted = work - work.max(axis=1, keepdims=True)
        exp = xp.exp(shifted)
        total = exp.sum(axis=1, keepdims=True)
        rows = xp.arange(n)
        loss = (xp.log(total[:, 0]) - shifted[rows, labels]).sum() / (n if n else np.nan)  # NaN: a mean of nothing
        exp /= total
        exp[rows, labels] -= 1
        exp /= max(n, 1)
        return loss.astype(logits.dtype), exp.astype(logits.dtype, copy=False)

    # -- optimizer steps, one parameter at a time, in place (``state`` keeps buffers across steps) --
    def _scratch(self, state, like):
        scratch = state.get("scratch")
        if scratch is None or scratch.shape != like.shape or scratch.dtype != like.dtype:
            scratch = state["scratch"] = self.xp.empty_like(like)
        return scratch

    def sgd_step(self, params, grads, states, lr, momentum, dampening, nesterov, weight_decay):
        """p -= lr * d with d = g + wd p, through (Nesterov) momentum, for each parameter in place."""
        for param, grad, state in zip(params, grads, states):
            self._sgd_one(param, grad, state, lr, momentum, dampening, nesterov, weight_decay)

    def _sgd_one(self, param, grad, state, lr, momentum, dampening, nesterov, weight_decay):
        xp = self.xp  # no fresh temporaries per step: one scratch buffer per parameter
        d = self._scratch(state, param)
        if not weight_decay and not momentum:  # plain SGD: two passes, as p -= lr * g
            xp.multiply(grad, lr, out=d)
            param -= d
            return
        if weight_decay:
            xp.multiply(param, weight_decay, out=d)
            d += grad
        else:
            xp.copyto(d, grad)
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= momentum
                buf += d if not dampening else (1 - dampening) * d
            if nesterov:
                extra = state.get("scratch2")
                if extra is None:
                    extra = state["scratch2"] = xp.empty_like(param)
                xp.multiply(buf, momentum, out=extra)
                d += extra
            else:
                xp.copyto(d, buf)
        d *= lr
        param -= d

    def adam_step(self, params, grads, states, lr, beta1, beta2, eps, weight_decay, decoupled):
        """Adam (decoupled=False: L2 added to g) and AdamW (decoupled=True: p *= 1 - lr wd);
        ``state["step"]`` counts each parameter's steps (bias correction)."""
        for param, grad, state in zip(params, grads, states):
            self._adam_one(param, grad, state, state["step"], lr, beta1, beta2, eps, weight_decay, decoupled)

    def _adam_one(self, param, grad, state, step, lr, beta1, beta2, eps, weight_decay, decoupled):
        xp = self.xp
        s = self._scratch(state, param)
        m, v = state.get("exp_avg"), state.get("exp_avg_sq")
        if m is None:  # NOTE: not setdefault, whose default would allocate and zero-fill on every step
            m = state["exp_avg"] = xp.zeros_like(param)
            v = state["exp_avg_sq"] = xp.zeros_like(param)
        if weight_decay and decoupled:
            param *= 1 - lr * weight_decay
        elif weight_decay:
            grad = grad + weight_decay * param
        m *= beta1
        xp.multiply(grad, 1 - beta1, out=s)
        m += s
        v *= beta2
        xp.multiply(grad, grad, out=s)
        s *= 1 - beta2
        v += s
        # NOTE: p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps), PyTorch's form of Adam.
        xp.sqrt(v, out=s)
        s /= math.sqrt(1 - beta2 ** step)
        s += eps
        xp.divide(m, s, out=s)
        s *= lr / (1 - beta1 ** step)
        param -= s
