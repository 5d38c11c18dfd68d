"""RMSprop and Adagrad (PyTorch's formulations): the ``xp`` formula on both devices (no fused kernel)."""
from __future__ import annotations

import numpy as np

from ..backend import is_host_array
from .optimizer import Optimizer, check_hyperparameter


class RMSprop(Optimizer):
    """v = alpha v + (1 - alpha) g^2 (g = grad + weight_decay p); centered: a = alpha a + (1 - alpha) g,
    avg = sqrt(v - a^2) + eps, else sqrt(v) + eps; momentum: b = momentum b + g / avg, p -= lr b; else
    p -= lr g / avg."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered))

    def check(self, h):
        h["lr"] = check_hyperparameter("RMSprop", "lr", h["lr"], low_open=True)
        h["alpha"] = check_hyperparameter("RMSprop", "alpha", h["alpha"], high=1.0)
        h["eps"] = check_hyperparameter("RMSprop", "eps", h["eps"])
        h["weight_decay"] = check_hyperparameter("RMSprop", "weight_decay", h["weight_decay"])
        h["momentum"] = check_hyperparameter("RMSprop", "momentum", h["momentum"])
        h["centered"] = bool(h["centered"])
        return h

    counts_steps = True

    def arguments(self, group):
        return (group["lr"], group["alpha"], group["eps"], group["weight_decay"], group["momentum"]), (group["centered"],)

    def make_state(self, xp, param, state, group):
        first = "square_avg" not in state
        for key, needed in (("square_avg", True), ("grad_avg", group["centered"]), ("momentum_buffer", group["momentum"])):
            if needed and key not in state:
                state[key] = xp.zeros_like(param)
        return first

    def update(self, xp, param, grad, state, first, scalars, switches):
        (lr, alpha, eps, weight_decay, momentum), (centered,) = scalars, switches
        if weight_decay:
            grad = grad + weight_decay * param
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if centered:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            grad_avg += (1 - alpha) * grad
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += eps
        if momentum:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            param -= lr * buf
        else:
            param -= lr * (grad / avg)


class Adagrad(Optimizer):
    """s += g^2 (g = grad + weight_decay p, s starting at initial_accumulator_value);
    p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def check(self, h):
        for name in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            h[name] = check_hyperparameter("Adagrad", name, h[name])
        h["lr"] = check_hyperparameter("Adagrad", "lr", h["lr"], low_open=True)
        return h

    counts_steps = True

    def arguments(self, group):
        return (group["lr"], group["lr_decay"], group["weight_decay"], group["initial_accumulator_value"],
                group["eps"]), ()

    def make_state(self, xp, param, state, group):
        if "sum" in state:
            return False
        state["sum"] = xp.full_like(param, group["initial_accumulator_value"])
        return True

    def update(self, xp, param, grad, state, first, scalars, switches):
        lr, lr_decay, weight_decay, _, eps = scalars
        step = float(state["step"]) if is_host_array(param) else state["step"].astype(np.float64)
        if weight_decay:
            grad = grad + weight_decay * param
        total = state["sum"]
        total += grad * grad
        param -= (lr / (1 + (step - 1) * lr_decay)) * (grad / (xp.sqrt(total) + eps))
