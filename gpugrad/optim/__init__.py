"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam and AdamW.

Each step updates the parameters' arrays in place through the backend (arrays, not tensor ops:
no graph is recorded): one fused CUDA kernel per 8 parameters on the GPU; on the CPU, BLAS axpy
when numpy's OpenBLAS is found, else in-place numpy with reused scratch buffers.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..backend import get_backend

_CPU = get_backend("cpu")


def check_hyperparameter(optimizer: str, name: str, value, low=0.0, high=math.inf, low_open=False, high_open=False):
    """A real, finite number in the range, or a one-line error naming the optimizer and the value."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{optimizer}: {name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if not math.isfinite(value) or below or above:
        left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        raise ValueError(f"{optimizer}: {name} must be a finite number in {left}{low:g}, {high:g}{right}, got {value!r}")
    return value


class Optimizer:
    def __init__(self, params, defaults: dict):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        from ..tensor import Tensor
        for p in self.params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: expected tensors (e.g. model.parameters()), got a "
                                f"{type(p).__name__}")
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
            p._version[0] += 1  # the step changes the parameter in place: graphs that saved it are stale
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
        """Load what ``state_dict`` returned. Everything is checked first: on any mismatch it raises,
        naming all of them, and changes nothing."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"hyperparameters", "state"}:
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys 'hyperparameters' and 'state', "
                             f"got {sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__}")
        saved_states, problems = list(state_dict["state"]), []
        if len(saved_states) != len(self.params):
            problems.append(f"{len(saved_states)} parameter states for {len(self.params)} parameters")
        unknown = sorted(set(state_dict["hyperparameters"]) - set(self.defaults))
        if unknown:
            problems.append(f"unknown hyperparameters {unknown}")
        for i, (p, saved) in enumerate(zip(self.params, saved_states)):
            for key, value in saved.items():
                if np.ndim(value) and tuple(np.shape(value)) != p.shape:
                    problems.append(f"state {i} {key!r} has shape {tuple(np.shape(value))}, the parameter {p.shape}")
        if problems:
            raise ValueError(f"{name}.load_state_dict: " + "; ".join(problems))
        self.defaults.update(state_dict["hyperparameters"])
        for p, own, saved in zip(self.params, self.state, saved_states):
            own.clear()
            for k, v in saved.items():
                own[k] = p.backend.asarray(np.asarray(v, dtype=p.dtype)) if np.ndim(v) else v


class SGD(Optimizer):
    """p -= lr * d, d = g + weight_decay * p, with momentum: b = momentum * b + (1 - dampening) * d,
    d = b (or d + momentum * b with Nesterov). PyTorch's formulation."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        lr = check_hyperparameter("SGD", "lr", lr, low_open=True)
        momentum = check_hyperparameter("SGD", "momentum", momentum)
        dampening = check_hyperparameter("SGD", "dampening", dampening, high=1.0)
        weight_decay = check_hyperparameter("SGD", "weight_decay", weight_decay)
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
        name = type(self).__name__
        lr = check_hyperparameter(name, "lr", lr, low_open=True)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair of numbers, got {betas!r}")
        betas = tuple(check_hyperparameter(name, f"betas[{i}]", b, high=1.0, high_open=True) for i, b in enumerate(betas))
        eps = check_hyperparameter(name, "eps", eps)
        weight_decay = check_hyperparameter(name, "weight_decay", weight_decay)
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
