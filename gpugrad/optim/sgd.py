"""SGD with momentum, dampening, Nesterov momentum and weight decay (PyTorch's formulation)."""
from __future__ import annotations

from .optimizer import Optimizer, check_hyperparameter


class SGD(Optimizer):
    """p -= lr * d, d = g + weight_decay * p, with momentum: b = momentum * b + (1 - dampening) * d,
    d = b (or d + momentum * b with Nesterov). PyTorch's formulation."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay, maximize=maximize))

    def check(self, h):
        h["lr"] = check_hyperparameter("SGD", "lr", h["lr"], low_open=True)
        h["momentum"] = check_hyperparameter("SGD", "momentum", h["momentum"])
        h["dampening"] = check_hyperparameter("SGD", "dampening", h["dampening"], high=1.0)
        h["weight_decay"] = check_hyperparameter("SGD", "weight_decay", h["weight_decay"])
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        return h

    def reads_flag_first(self, group, states):
        # NOTE: a skipped first step must leave no momentum buffer (the next one starts it from d, not from a
        # zero buffer: they differ with dampening), so the first step under a GradScaler reads its flag.
        return group["momentum"] != 0 and any("momentum_buffer" not in s for s in states)

    def arguments(self, group):
        return ((group["lr"], group["momentum"], group["dampening"], group["weight_decay"]),
                (group["momentum"] != 0, bool(group["nesterov"]), bool(group["maximize"])))

    def make_state(self, xp, param, state, group):
        """The momentum buffer, uninitialized: the first update writes d into it (PyTorch's b = d)."""
        if group["momentum"] == 0 or "momentum_buffer" in state:
            return False
        state["momentum_buffer"] = xp.empty_like(param)
        return True

    def state_made(self, group, state):
        return group["momentum"] == 0 or "momentum_buffer" in state

    def fused(self, kernels, params, grads, states, firsts, scalars, switches, found_inf, grad_scale):
        """The multi-tensor kernel (``gpugrad.cuda.kernels.sgd_step``)."""
        momentum, nesterov, _ = switches
        return kernels.sgd_step(params, grads, [s.get("momentum_buffer") for s in states], firsts, scalars, momentum,
                                nesterov, found_inf, grad_scale)

    def kernel_takes(self, group):
        return not group["maximize"]  # the kernel steps down only: the formula

    def update(self, xp, param, grad, state, first, scalars, switches):
        """The rule on one parameter, in place: d = g + wd p; b = momentum b + (1 - dampening) d
        (b = d at the first step); d = b, or d + momentum b (Nesterov); p -= lr d."""
        (lr, momentum, dampening, weight_decay), (_, nesterov, maximize) = scalars, switches
        if maximize:
            grad = -grad
        d = self.scratch(xp, state, param)
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
            buf = state["momentum_buffer"]
            if first:
                xp.copyto(buf, d)
            else:
                buf *= momentum
                buf += d if not dampening else (1 - dampening) * d
            if nesterov:
                extra = self.scratch(xp, state, param, "scratch2")
                xp.multiply(buf, momentum, out=extra)
                d += extra
            else:
                xp.copyto(d, buf)
        d *= lr
        param -= d
