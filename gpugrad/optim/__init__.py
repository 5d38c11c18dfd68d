"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW.

Each step updates the parameters' arrays in place through the backend (arrays, not tensor ops:
no graph is recorded): one fused CUDA kernel per 8 parameters on the GPU; on the CPU, BLAS axpy
when numpy's OpenBLAS is found, else in-place numpy with reused scratch buffers.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_backend

_CPU = get_backend("cpu")


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for p in self.params:
            if not getattr(p, "requires_grad", False):
                raise ValueError(f"{type(self).__name__}: every parameter must require grad, got shape {p.shape}")
        self.defaults = dict(defaults)
        self.state = [dict() for _ in self.params]

    def zero_grad(self, set_to_none: bool = True):
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def _groups(self):
        """(backend, parameter arrays, gradient arrays, states) per device, for parameters with a gradient."""
        groups = {}
        for p, state in zip(self.params, self.state):
            grad = p.grad
            if grad is None:
                continue
            data, grad_data = p.data, grad.data
            if data.__class__ is np.ndarray and grad_data.__class__ is np.ndarray:
                backend = _CPU  # both on the CPU: no device lookup
            else:
                backend = p.backend
                if grad.backend is not backend:
                    raise RuntimeError(f"{type(self).__name__}: gradient on {grad.device} for a parameter on {p.device}")
            group = groups.get(backend)
            if group is None:
                group = groups[backend] = (backend, [], [], [])
            group[1].append(data)
            group[2].append(grad_data)
            group[3].append(state)
        return list(groups.values())

    def state_dict(self) -> dict:
        """{"hyperparameters": ..., "state": [{name: numpy array or number}, ...]} (no scratch buffers)."""
        state = [{k: (p.backend.to_numpy(v).copy() if hasattr(v, "shape") else v)
                  for k, v in s.items() if not k.startswith("scratch")} for s, p in zip(self.state, self.params)]
        return {"hyperparameters": dict(self.defaults), "state": state}

    def load_state_dict(self, state_dict: dict) -> None:
        if len(state_dict["state"]) != len(self.params):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(state_dict['state'])} parameter states "
                             f"for {len(self.params)} parameters")
        self.defaults.update(state_dict["hyperparameters"])
        for p, own, saved in zip(self.params, self.state, state_dict["state"]):
            own.clear()
            for k, v in saved.items():
                own[k] = p.backend.asarray(np.asarray(v)) if np.ndim(v) else v


class SGD(Optimizer):
    """p -= lr * d, d = g + weight_decay * p, with momentum: b = momentum * b + (1 - dampening) * d,
    d = b (or d + momentum * b with Nesterov). PyTorch's formulation."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr must be > 0 and momentum, weight_decay >= 0 (lr={lr}, momentum={momentum}, "
                             f"weight_decay={weight_decay})")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def step(self):  # arrays only, no graph: nothing to turn off
        d = self.defaults
        for backend, params, grads, states in self._groups():
            backend.sgd_step(params, grads, states, d["lr"], d["momentum"], d["dampening"], d["nesterov"],
                             d["weight_decay"])


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps). weight_decay adds wd * p to g."""
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if lr <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: invalid hyperparameters lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self):  # arrays only, no graph: nothing to turn off
        d = self.defaults
        for backend, params, grads, states in self._groups():
            for state in states:
                state["step"] = state.get("step", 0) + 1
            backend.adam_step(params, grads, states, d["lr"], d["betas"][0], d["betas"][1], d["eps"],
                              d["weight_decay"], self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam update."""
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
