"""The optimizer base: parameters, per-parameter state, grouping by device, state dicts, and the
hyperparameter checks every optimizer uses."""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import autograd
from ..autograd import mark_changed
from ..seam import refuse_in_capture
from ..backend import get_backend
from ..tensor import Tensor

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


def unscale_check(xp, grads, scale, found, write=True):
    """grad *= 1 / scale (the float32 reciprocal, as PyTorch), in place (``write=False``: only checked);
    ``found`` (or None: no check) set where any is inf or NaN."""
    if not grads:
        return
    inverse = xp.reciprocal(scale.astype(np.float32))
    for g in grads:
        factor = inverse.astype(g.dtype) if g.dtype != np.float64 else inverse
        unscaled = g * factor if not write else xp.multiply(g, factor, out=g)
        if found is not None:
            xp.maximum(found, (~xp.isfinite(unscaled)).any(), out=found)


class Optimizer:
    """Parameters in ``param_groups`` (dicts with "params" and the hyperparameters, each group's own,
    defaults filled in), per-parameter ``state`` (a dict keyed by parameter), PyTorch's state_dict.

    ``params`` is an iterable of tensors, or of dicts for several groups (e.g. no weight decay on
    biases: ``[{"params": weights}, {"params": biases, "weight_decay": 0.0}]``).

    A family's file gives, each once: ``check(hyperparameters)`` (raises on a bad value); ``arguments(group)``,
    its hyperparameters as (scalars, switches): the numbers its update reads (the fused kernel reads them from
    device memory, so a schedule may change them between replays of a captured step) and the structural
    switches; ``make_state``, where its state is made; ``update``, the formula on one parameter (every device);
    and ``fused``, the multi-tensor kernel's launch where it has one.

    A ``GradScaler`` meets it through PyTorch's protocol: ``_step_supports_amp_scaling`` and
    ``step(grad_scale=, found_inf=)`` (the update unscales the gradients as it reads them and skips where the
    device flag is set).
    """
    _step_supports_amp_scaling = True

    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        self.defaults = self.check(dict(defaults))
        self.param_groups, self.state = [], {}
        self._scalars = {}  # (id(group), backend) -> [the kernel scalars on the device, their values, host copy]
        for group in (params if isinstance(params[0], dict) else [{"params": params}]):
            self.add_param_group(group)

    def check(self, hyperparameters: dict) -> dict:
        return hyperparameters

    def add_param_group(self, group: dict) -> None:
        """Add a group: its "params", and hyperparameters that override the defaults."""
        name = type(self).__name__
        refuse_in_capture(f"{name}.add_param_group()", "add the group before compiling the step (or outside it)")
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group is a dict with 'params', got {type(group).__name__}")
        params = [group["params"]] if isinstance(group["params"], Tensor) else list(group["params"])
        unknown = sorted(set(group) - set(self.defaults) - {"params"})
        if unknown:
            raise ValueError(f"{name}: unknown hyperparameters {unknown} (this optimizer takes {sorted(self.defaults)})")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: expected tensors (e.g. model.parameters()), got a {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"{name}: every parameter must require grad, got shape {p.shape}")
            if id(p) in taken:
                raise ValueError(f"{name}: a parameter of shape {p.shape} is in more than one group")
        hyper = self.check({**self.defaults, **{k: v for k, v in group.items() if k != "params"}})
        self.param_groups.append({"params": params, **hyper})

    @property
    def params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none: bool = True):
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    counts_steps = False  # keep state["step"] (a 0-d float32 array on the parameter's device, as PyTorch's)
    fused = None  # fused(kernels, params, grads, states, firsts, scalars, switches, found_inf, grad_scale) -> left

    def arguments(self, group) -> tuple:
        """(scalars, switches): the group's hyperparameters as the update and the kernel take them."""
        raise NotImplementedError

    def kernel_takes(self, group) -> bool:
        """Whether the fused kernel does this group's update (where it fits the arrays): a family's options the
        kernel lacks (Adam's amsgrad, maximize) keep the group on the formula, and out of a CUDA graph."""
        return self.fused is not None

    def make_state(self, xp, param, state, group) -> bool:
        """Make what the update keeps in ``state`` for ``param`` where it is missing; True if this is its first
        update (the one place state is made, for the formula and the kernel alike)."""
        return False

    def update(self, xp, param, grad, state, first, scalars, switches):
        """The formula on one parameter, in place (``first``: what ``make_state`` returned)."""
        raise NotImplementedError

    def state_made(self, group, state) -> bool:
        """Whether a parameter's state exists (made by an eager step): only then can its update join a CUDA graph."""
        return False

    def step(self, *, grad_scale=None, found_inf=None):  # arrays only, no graph: nothing to turn off
        """Update every parameter with a gradient: the fused kernel where it applies, else ``update``.
        From a ``GradScaler``: ``found_inf`` {backend: 0-d float32 flag} -- where it is set the step is skipped,
        decided on the device by the kernels (the formula reads the flag) -- and ``grad_scale`` {backend: the loss
        scale} when the gradients are still scaled: the kernels unscale them as they read them, the formula first."""
        if not autograd.replayed_call(lambda: self._update(found_inf, grad_scale), self, self._in_graph):
            self._update(found_inf, grad_scale)  # (inside gpugrad.compile, every replay updates)

    def _update(self, found_inf=None, grad_scale=None):
        for group in self.param_groups:
            scalars, switches = self.arguments(group)
            for backend, params, grads, states in self._devices(group):
                found = None if found_inf is None else found_inf[backend]
                factor = None if grad_scale is None else grad_scale[backend]
                if found is not None and self.reads_flag_first(group, states):
                    if bool(found):  # NOTE: a host read, only before a state's first update (see reads_flag_first)
                        continue
                    found = None
                xp = backend.xp
                firsts = [self.make_state(xp, p, s, group) for p, s in zip(params, states)]
                if backend.kernels is None or not self.kernel_takes(group):
                    left = range(len(params))
                else:
                    left = self.fused(backend.kernels, params, grads, states, firsts,
                                      self._device_scalars(group, backend, scalars), switches, found, factor)
                if left and found is not None and bool(found):  # NOTE: a host read, where no kernel applies
                    continue
                if factor is not None:
                    unscale_check(xp, [grads[i] for i in left], factor, None)
                for i in left:
                    if self.counts_steps:
                        states[i]["step"] += 1
                    self.update(xp, params[i], grads[i], states[i], firsts[i], scalars, switches)

    def _device_scalars(self, group, backend, values, write=None):
        """The group's kernel scalars as a float64 array on ``backend``'s device, written when they changed -- not
        while a CUDA graph is being captured (``write``: by default, unless one is): the capture's refresh writes
        them before every launch."""
        held, key, values = self._scalars, (id(group), backend), tuple(map(float, values))
        entry = held.get(key)
        if entry is None:  # NOTE: the host array stays referenced: CuPy copies it to the device asynchronously
            host = np.array(values, np.float64)
            entry = held[key] = [backend.asarray(host), values, host]  # on the parameters' GPU, not the current one
        elif entry[1] != values and (write if write is not None else not autograd.capturing()):
            entry[2] = np.array(values, np.float64)
            entry[0].set(entry[2])
            entry[1] = values
        return entry[0]

    def _in_graph(self):
        """Inside a CUDA graph capture: a refresh to run before every launch of the graph, when the whole step can
        join the graph (every parameter taken by the kernel, its state and device scalars made by an eager step);
        else None, and the step runs as a host call between two graphs."""
        if not all(self.kernel_takes(g) for g in self.param_groups):  # the formula: a graph would freeze its numbers
            return None
        held, captured = self._scalars, []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            backends = {p.backend for p in params}
            for p in params:
                kernels, state = p.backend.kernels, self.state.get(p)
                if kernels is None or state is None or not self.state_made(group, state) or (
                        not kernels.optimizer_fits(p.data, p.grad.data)) or (id(group), p.backend) not in held:
                    return None
            arrays = [(p, p.data, [v for v in self.state[p].values() if hasattr(v, "shape")]) for p in params]
            captured.append((group, backends, self.arguments(group)[1], arrays))

        def refresh():
            name = type(self).__name__
            for group, backends, switches, arrays in captured:
                scalars, now = self.arguments(group)
                if now != switches:
                    raise autograd.CaptureError(
                        f"gpugrad.compile: {name}'s structural hyperparameters (momentum on or off, nesterov, decoupled "
                        "weight decay) changed since its step was captured into a CUDA graph; compile the step again")
                for p, data, state in arrays:
                    held_now = list(self.state.get(p, {}).values())
                    if p.data is not data or any(all(v is not a for v in held_now) for a in state):
                        raise autograd.CaptureError(
                            f"gpugrad.compile: a parameter of shape {p.shape} or its {name} state was replaced since the "
                            "step was captured into a CUDA graph (load_state_dict, .data =); compile the step again")
                    mark_changed(p)
                for backend in backends:
                    self._device_scalars(group, backend, scalars, write=True)
        return refresh

    def reads_flag_first(self, group, states) -> bool:
        """Whether a skipped step must be known on the host before this update (SGD's first momentum step)."""
        return False

    @staticmethod
    def scratch(xp, state, like, key="scratch"):
        """A buffer kept in the parameter's state: the update rules allocate nothing per step."""
        buffer = state.get(key)
        if buffer is None or buffer.shape != like.shape or buffer.dtype != like.dtype:
            buffer = state[key] = xp.empty_like(like)
        return buffer

    def _devices(self, group):
        """(backend, parameter arrays, gradient arrays, states) per device, for a group's parameters with a
        gradient; each of them is about to change in place (its version is bumped, its step counted)."""
        devices = {}
        for p in group["params"]:
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
            entry = devices.get(backend)
            if entry is None:
                entry = devices[backend] = (backend, [], [], [])
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {}
            if self.counts_steps and "step" not in state:  # counted on the device, by the kernel or ``_update``
                state["step"] = backend.xp.zeros((), np.float32)
            mark_changed(p)  # the step changes the parameter in place: graphs that saved it are stale
            entry[1].append(data)
            entry[2].append(grad_data)
            entry[3].append(state)
        return list(devices.values())

    def state_dict(self) -> dict:
        """PyTorch's layout: {"state": {index: {name: array or number}}, "param_groups": [{..., "params":
        [indices]}]}, parameters numbered in group order; scratch buffers are left out."""
        index = {id(p): i for i, p in enumerate(self.params)}
        state = {index[id(p)]: {k: (p.backend.to_numpy(v).copy() if hasattr(v, "shape") else v)
                                for k, v in s.items() if not k.startswith("scratch")} for p, s in self.state.items()}
        state = {i: s for i, s in state.items() if s}  # plain SGD keeps nothing (its scratch buffer is left out)
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load what ``state_dict`` returned. Everything is checked first: on any mismatch it raises,
        naming all of them, and changes nothing."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys 'state' and 'param_groups', "
                             f"got {sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__}")
        params, problems = self.params, []
        groups = list(state_dict["param_groups"])
        sizes = [len(g["params"]) for g in self.param_groups]
        if [len(g.get("params", ())) for g in groups] != sizes:
            problems.append(f"parameter groups of sizes {[len(g.get('params', ())) for g in groups]} for groups of "
                            f"sizes {sizes}")
        hypers = []
        for g in groups:
            try:
                hypers.append(self.check({**self.defaults, **{k: v for k, v in g.items() if k != "params"}}))
            except (TypeError, ValueError) as error:
                problems.append(str(error))
        for key, saved in dict(state_dict["state"]).items():
            i = int(key)
            if not 0 <= i < len(params):
                problems.append(f"state for parameter {i} of {len(params)}")
                continue
            for k, v in saved.items():
                if np.ndim(v) and tuple(np.shape(v)) != params[i].shape:
                    problems.append(f"state {i} {k!r} has shape {tuple(np.shape(v))}, the parameter {params[i].shape}")
        if problems:
            raise ValueError(f"{name}.load_state_dict: " + "; ".join(problems) + " (nothing was loaded)")
        for group, hyper in zip(self.param_groups, hypers):
            group.update(hyper)
        self.state = {}
        for key, saved in dict(state_dict["state"]).items():
            p = params[int(key)]
            self.state[p] = {k: p.backend.asarray(np.asarray(v, dtype=np.float32 if k == "step" else p.dtype))
                             if np.ndim(v) or k == "step" else v for k, v in saved.items()}
