"""Adam and AdamW (PyTorch's formulation)."""
from __future__ import annotations

import math

import numpy as np

from ..backend import is_host_array
from .optimizer import Optimizer, check_hyperparameter


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). weight_decay adds wd * p to g; ``amsgrad``
    divides by the largest v so far instead; ``maximize`` steps up the gradient (PyTorch's)."""
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def check(self, h):
        name = type(self).__name__
        h["lr"] = check_hyperparameter(name, "lr", h["lr"], low_open=True)
        if not isinstance(h["betas"], (tuple, list)) or len(h["betas"]) != 2:
            raise TypeError(f"{name}: betas must be a pair of numbers, got {h['betas']!r}")
        h["betas"] = tuple(check_hyperparameter(name, f"betas[{i}]", b, high=1.0, high_open=True)
                           for i, b in enumerate(h["betas"]))
        h["eps"] = check_hyperparameter(name, "eps", h["eps"])
        h["weight_decay"] = check_hyperparameter(name, "weight_decay", h["weight_decay"])
        h["amsgrad"], h["maximize"] = bool(h["amsgrad"]), bool(h["maximize"])
        return h

    counts_steps = True

    def arguments(self, group):
        return ((group["lr"], *group["betas"], group["eps"], group["weight_decay"]),
                (self.decoupled, group["amsgrad"], group["maximize"]))

    def make_state(self, xp, param, state, group):
        if group["amsgrad"] and "max_exp_avg_sq" not in state:  # NOTE: not setdefault, whose default would allocate
            state["max_exp_avg_sq"] = xp.zeros_like(param)   # and zero-fill on every step
        if "exp_avg" in state:
            return False
        state["exp_avg"], state["exp_avg_sq"] = xp.zeros_like(param), xp.zeros_like(param)
        return True

    def state_made(self, group, state):
        return "exp_avg" in state and "step" in state and (not group["amsgrad"] or "max_exp_avg_sq" in state)

    def fused(self, kernels, params, grads, states, firsts, scalars, switches, found_inf, grad_scale):
        """The multi-tensor kernel (``gpugrad.cuda.kernels.adam_step``): it counts the steps on the device and
        computes the bias corrections from them."""
        return kernels.adam_step(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                                 [s["step"] for s in states], scalars, switches[0], found_inf, grad_scale)

    def kernel_takes(self, group):
        return not (group["amsgrad"] or group["maximize"])  # the kernel has neither: the formula

    def update(self, xp, param, grad, state, first, scalars, switches):
        """The rule on one parameter, in place; ``state["step"]`` (counted for this update) is t, the bias
        corrections' power."""
        (lr, beta1, beta2, eps, weight_decay), (decoupled, amsgrad, maximize) = scalars, switches
        if maximize:
            grad = -grad
        on_host = is_host_array(param)  # NOTE: not `xp is np`: a capture hands the CPU a recording module
        step = float(state["step"]) if on_host else state["step"].astype(np.float64)  # on a GPU, no host read
        sqrt = math.sqrt if on_host else xp.sqrt
        s = self.scratch(xp, state, param)
        m, v = state["exp_avg"], state["exp_avg_sq"]
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
        if amsgrad:
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        xp.sqrt(v, out=s)
        s /= sqrt(1 - beta2 ** step)
        s += eps
        xp.divide(m, s, out=s)
        s *= lr / (1 - beta1 ** step)
        param -= s


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam update."""
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
