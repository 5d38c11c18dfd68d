"""The optimizer base: parameters, per-parameter state, grouping by device, state dicts, and the
hyperparameter checks every optimizer uses."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import mark_changed
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

    @staticmethod
    def scratch(xp, state, like, key="scratch"):
        """A buffer kept in the parameter's state: the update rules allocate nothing per step."""
        buffer = state.get(key)
        if buffer is None or buffer.shape != like.shape or buffer.dtype != like.dtype:
            buffer = state[key] = xp.empty_like(like)
        return buffer

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
            mark_changed(p)  # the step changes the parameter in place: graphs that saved it are stale
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
