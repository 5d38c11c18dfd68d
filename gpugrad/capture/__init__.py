"""``gpugrad.compile``: capture a training step once, replay it.

``step = gpugrad.compile(train_step)``; ``step(xb, yb)`` runs ``train_step`` eagerly for the warm-up
calls, captures the next call, and replays it afterwards: on the CPU a tape of numpy calls into fixed
buffers (``capture.cpu``), on a GPU CUDA graphs (``capture.cuda``). The tensors the step closes over
(parameters, optimizer state) are used in place; its tensor arguments are copied into buffers of the
capture. Each input signature (shape, dtype, device of every tensor argument, and the other arguments'
values) has its own capture, so an epoch's smaller last batch works. An optimizer's ``step()`` inside
the function is replayed as a call (its learning rate and step count are read at every replay).
The first replay of every capture is checked against an eager run of the same step from the same
state (bit for bit on the CPU, within float32 rounding on a GPU).
"""
from __future__ import annotations

import collections
import warnings

import numpy as np

from .. import autograd
from ..autograd import CaptureError, HostReadError
from ..backend import get_backend
from ..dtypes import known_bfloat16
from ..tensor import Tensor
from .cpu import Tape
from .guards import Guards

__all__ = ["compile", "CompiledStep", "CaptureError", "HostReadError", "CaptureMismatchError"]


class CaptureMismatchError(CaptureError):
    """The first replay of a captured step differed from an eager run of it."""


def compile(fn=None, *, enabled: bool = True, check: bool = True, warmup: int = 1, cache_size: int = 8,
            device=None, fallback=None):
    """Capture ``fn`` (a training or inference step taking tensors) once per input signature and replay it.

    ``enabled=False`` runs ``fn`` eagerly every time (debugging); ``check=False`` skips the comparison of
    the first replay with an eager run; ``warmup`` eager calls per signature come before the capture
    (optimizer state, kernel compilation); at most ``cache_size`` captures are kept (least recently used
    dropped); ``device`` is where a step without tensor arguments runs (else the arguments' device);
    ``fallback(error)``, if given, is called when a capture fails, and the step runs eagerly from then on (that
    call included) instead of raising: for a step of the library's own, whose failure is the capture's.
    The tensors a replay returns are overwritten by the next call: ``.item()`` or ``.clone()`` to keep them.
    The function's Python runs once, at the capture: Python numbers it reads are constants of the capture
    (an optimizer's param_groups are read at every replay). Usable as a decorator, with or without arguments.
    """
    if fn is None:
        return lambda f: CompiledStep(f, enabled, check, warmup, cache_size, device, fallback)
    return CompiledStep(fn, enabled, check, warmup, cache_size, device, fallback)


class CompiledStep:
    def __init__(self, fn, enabled=True, check=True, warmup=1, cache_size=8, device=None, fallback=None):
        if not callable(fn):
            raise TypeError(f"gpugrad.compile: expected a function, got {type(fn).__name__}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"gpugrad.compile: warmup must be an integer >= 0, got {warmup!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ValueError(f"gpugrad.compile: cache_size must be an integer >= 1, got {cache_size!r}")
        self.fn, self.enabled, self.check, self.warmup, self.cache_size = fn, bool(enabled), bool(check), warmup, cache_size
        self.device = None if device is None else get_backend(device)
        self.fallback = fallback
        self._captures = collections.OrderedDict()  # signature -> [_Capture, latest first], least recently used first
        self._stale = set()  # signatures whose captures' guards failed, waiting for a new capture
        self._recaptures, self._warned = 0, False
        self._eager_calls = collections.Counter()
        self._gemms = {}  # signature -> the GEMM shapes of its last eager call
        self.__wrapped__ = fn

    def __call__(self, *args, **kwargs):
        if kwargs:
            raise TypeError(f"gpugrad.compile: pass the step's arguments by position (got {sorted(kwargs)} by name)")
        if not self.enabled or autograd.features.capture is not None:  # inside another capture: part of its tape
            return self.fn(*args)
        key = _signature(args)
        entries = self._captures.get(key)
        if entries:
            for capture in entries:  # the latest first; the first whose guards hold replays
                failed = capture.guards.failing()
                if failed is None:
                    self._captures.move_to_end(key)
                    if capture is not entries[0]:
                        entries.remove(capture)
                        entries.insert(0, capture)
                    return capture.replay(args) if capture.checked else capture.checked_replay(self.fn, args)
            if key not in self._stale:  # the state changed since: warm up under the new state and capture again
                self._stale.add(key)
                self._eager_calls[key] = 0
                self._guard_failed(entries[0].guards.failing())
        backend = self._backend(args)
        # NOTE: on a GPU at least one eager call first: kernels compile, cuBLAS and the kernels' own
        # buffers are set up outside the capture's memory pool.
        if self._eager_calls[key] < (self.warmup if backend.kind == "cpu" else max(self.warmup, 1)):
            self._eager_calls[key] += 1
            with backend.recording_gemms() as gemms:  # a GPU capture runs each shape once before it begins
                result = self.fn(*args)
            self._gemms[key] = gemms
            return result
        capture = _Capture(backend, checked=not self.check, gemms=self._gemms.pop(key, ()))
        try:
            result = capture.record(self.fn, args)
        except Exception as error:
            if self.fallback is None:
                raise
            self.fallback(error)
            self.enabled = False
            return self.fn(*args)
        self._stale.discard(key)
        self._captures.setdefault(key, []).insert(0, capture)
        self._captures.move_to_end(key)
        while self.captures > self.cache_size:  # the least recently used signature's oldest capture goes
            oldest = next(iter(self._captures))
            self._captures[oldest].pop()
            if not self._captures[oldest]:
                del self._captures[oldest]
        return result

    def _guard_failed(self, guard):
        """A capture is made again because ``guard`` failed; a step that keeps failing guards warns once."""
        self._recaptures += 1
        if self._recaptures > self.cache_size and not self._warned:
            self._warned = True
            warnings.warn(f"gpugrad.compile: {getattr(self.fn, '__name__', 'the step')} keeps failing its guards "
                          f"(captured again {self._recaptures} times; last: {guard} changed). Each change of that "
                          "state between calls captures the step again; keep it fixed, or run the step eagerly "
                          "(gpugrad.compile(fn, enabled=False))", RuntimeWarning, stacklevel=3)

    @property
    def captures(self) -> int:
        """How many captures are kept now (one or more per input signature, one per guarded state)."""
        return sum(len(entries) for entries in self._captures.values())

    def _backend(self, args):
        devices = {a.backend for a in args if isinstance(a, Tensor)}
        if len(devices) > 1:
            raise CaptureError(f"gpugrad.compile: the step's tensor arguments are on several devices "
                               f"({sorted(d.name for d in devices)})")
        return devices.pop() if devices else (self.device or get_backend("cpu"))


def _signature(args):
    key = []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            key.append(("tensor", a.data.shape, a.data.dtype.str, a.device, a.requires_grad))
        else:
            try:
                hash(a)
            except TypeError:
                raise TypeError(f"gpugrad.compile: argument {i} is a {type(a).__name__}; a step takes tensors (copied "
                                "into the capture at every call) and hashable constants (part of the signature)") from None
            key.append(("value", type(a).__name__, a))
    return tuple(key)


def _structure(obj, leaf):
    """``obj`` (a tensor, or tuples, lists and dicts of them) with every tensor replaced by ``leaf(tensor)``."""
    if isinstance(obj, Tensor):
        return leaf(obj)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_structure(o, leaf) for o in obj)
    if isinstance(obj, dict):
        return {k: _structure(v, leaf) for k, v in obj.items()}
    return obj


def _shallow(attributes: dict) -> dict:
    """An owner's attributes with its containers and arrays copied (a GradScaler's growth tracker)."""
    return {k: (v.copy() if isinstance(v, (set, dict, list)) or hasattr(v, "__array__") and hasattr(v, "copy") else v)
            for k, v in attributes.items()}


def _tensors(obj):
    found = []
    _structure(obj, found.append)
    return found


class _Capture:
    """One input signature's capture: the device tape, the step's inputs and outputs, what it changes. It keeps
    the capture protocol (``protocol.Recorder``)."""

    def __init__(self, backend, checked, gemms=()):
        if backend.kind == "cpu":
            self.tape = Tape(backend)
        else:
            from .cuda import GraphTape
            self.tape = GraphTape(backend, gemms)
        self.checked = checked
        self.leaves, self.optimizers, self.others, self.inputs, self.grads = {}, {}, {}, [], []
        self.guards = Guards(backend)

    # -- what the engine and the optimizers tell a capture (autograd.features.capture) --------------
    @property
    def paused(self):
        return self.tape.paused

    def arrays(self, *arrays):
        return self.tape.arrays(*arrays)

    def is_view(self, array):
        return self.tape.is_view(array)

    def leaf(self, tensor):
        self.leaves[id(tensor)] = tensor

    def read(self, tensors):
        self.guards.read(tensors)

    def module(self, module):
        self.guards.module(module)

    def host_call(self, fn, owner, in_graph=None):
        """``fn`` runs now and at every replay; ``owner`` (an optimizer, a GradScaler) holds what it changes;
        ``in_graph`` (see ``autograd.replayed_call``) lets a CUDA graph take ``fn``'s kernels."""
        (self.optimizers if hasattr(owner, "param_groups") else self.others)[id(owner)] = owner
        self.tape.host_call(fn, in_graph)

    def guard(self, check):
        """An input check that reads values (label ranges): run at every replay where the device allows."""
        self.tape.guard(check)

    # -- capture and replay -------------------------------------------------------------------
    def record(self, fn, args):
        tape, call_args = self.tape, list(args)
        for i, a in enumerate(args):
            if isinstance(a, Tensor):
                buffer = tape.static_copy(a.data)
                self.inputs.append((i, buffer))
                call_args[i] = Tensor._make(tape.traced(buffer), a.requires_grad)
        autograd.features.plug("capture", self)
        try:
            tape.start()
            try:
                result = fn(*call_args)
            except BaseException as error:
                try:
                    tape.stop(failed=True)  # the capture ends, its graph is dropped unlaunched
                except Exception:  # NOTE: the step's error stays the one raised; this one is its __context__
                    raise error
                raise
            tape.stop()
        finally:
            autograd.features.plug("capture", None)
        mine = {id(t) for t in call_args}  # the capture's own input tensors: their gradients are not the caller's
        self.guards.seal(self.optimizers.values(), mine)
        for t in self.leaves.values():
            if t.grad is not None and id(t) not in mine:
                t.grad.data = tape.plain(t.grad.data)
                self.grads.append((t, t.grad, t.grad.data))
        self.result = _structure(result, lambda t: Tensor._make(tape.plain(t.data), False))
        return self.result

    def replay(self, args):
        copy_into = self.tape.copy_into
        for i, buffer in self.inputs:
            copy_into(buffer, args[i].data)
        for tensor, grad, data in self.grads:  # what zero_grad() outside the step unbound
            tensor.grad = grad
            grad.data = data
        self.tape.replay()
        return self.result

    # -- the first replay is checked against an eager run from the same state ------------------
    def _watched(self, result):
        """(label, array) for everything a step changes that a replay must get right; ``result`` is what it returned."""
        watched = [(f"the step's result {i}", t.data) for i, t in enumerate(_tensors(result))]
        for t, grad, data in self.grads:
            watched.append((f"the gradient of a leaf tensor of shape {tuple(data.shape)}",
                            None if t.grad is None else t.grad.data))
        for opt in self.optimizers.values():
            name = type(opt).__name__
            for k, p in enumerate(opt.params):
                watched.append((f"{name}'s parameter {k} (shape {p.shape})", p.data))
                for key, value in opt.state.get(p, {}).items():
                    if hasattr(value, "shape") and not key.startswith("scratch"):
                        watched.append((f"{name}'s state {key!r} of parameter {k}", value))
        seen = {id(a) for _, a in watched}
        watched += [(f"an array of shape {tuple(a.shape)} from before the capture that the step uses", a)
                    for key, a in self.tape.touched().items() if key not in seen]
        return watched

    def _snapshot(self):
        tape = self.tape
        arrays = {id(a): (a, tape.copy(a)) for _, a in self._watched(self.result) if a is not None}
        states = {id(o): {p: dict(s) for p, s in o.state.items()} for o in self.optimizers.values()}
        others = {id(o): _shallow(o.__dict__) for o in self.others.values()}  # a GradScaler's counters
        return arrays, states, others, tape.rng_state()

    def _restore(self, snapshot):
        arrays, states, others, rng = snapshot
        for owner in self.others.values():
            owner.__dict__.update(_shallow(others[id(owner)]))
        for array, saved in arrays.values():
            if getattr(array.flags, "writeable", True):  # read-only ones (the cached unit gradient) cannot change
                self.tape.copy_into(array, saved)
        for opt in self.optimizers.values():
            opt.state = {p: dict(s) for p, s in states[id(opt)].items()}
        self.tape.set_rng_state(rng)

    def checked_replay(self, fn, args):
        before = self._snapshot()
        eager_result = fn(*args)
        host = self.tape.host
        eager = [(label, None if a is None else host(self.tape.copy(a))) for label, a in self._watched(eager_result)]
        after_eager, eager_grads = self._snapshot(), [(t, t.grad) for t, _, _ in self.grads]
        self._restore(before)
        result = self.replay(args)
        replayed = [(label, None if a is None else host(self.tape.copy(a))) for label, a in self._watched(result)]
        for (label, r), (_, e) in zip(replayed, eager):
            problem = describe_difference(r, e, self.tape.exact)
            if problem:
                self._restore(after_eager)  # the step counts as run once, eagerly: nothing wrong is kept
                for tensor, grad in eager_grads:
                    tensor.grad = grad
                raise CaptureMismatchError(
                    f"gpugrad.compile: the first replay of the captured step differs from an eager run from the same "
                    f"state: {label} {problem}. Something the step does is not captured (e.g. a change to an array "
                    "that no op or optimizer made, or a gradient kept across steps without zero_grad()); run it "
                    "eagerly (gpugrad.compile(fn, enabled=False)). The state is the eager run's; check=False skips "
                    "this check")
        self.checked = True
        return result


# (rtol, atol) of the GPU's first-replay check per dtype: a few units in the last place of each, for reductions summed
# in another order; float64 and the rest 1e-12
_TOLERANCES = {np.dtype(np.float32): (1e-5, 1e-6), np.dtype(np.float16): (4e-3, 1e-5)}
_BFLOAT16_TOLERANCE = (3e-2, 1e-4)


def describe_difference(replayed, eager, exact) -> str:
    """"" when equal (bit for bit, or within float32 / float64 rounding); else where and by how much."""
    if replayed is None or eager is None:
        return "" if replayed is None and eager is None else "exists in one run only"
    if replayed.shape != eager.shape or replayed.dtype != eager.dtype:
        return f"is {replayed.dtype}{tuple(replayed.shape)} replayed, {eager.dtype}{tuple(eager.shape)} eager"
    if np.array_equal(replayed, eager, equal_nan=True):
        return ""
    r, e = replayed.astype(np.float64), eager.astype(np.float64)  # bfloat16 (ml_dtypes) compares through float64
    rtol, atol = _BFLOAT16_TOLERANCE if replayed.dtype == known_bfloat16() else \
        _TOLERANCES.get(replayed.dtype, (1e-12, 1e-12))
    if not exact and np.allclose(r, e, rtol=rtol, atol=atol, equal_nan=True):
        return ""
    gap = np.where(np.isnan(r) & np.isnan(e), 0.0, np.abs(r - e))
    gap = np.where(np.isnan(gap), np.inf, gap)
    where = np.unravel_index(int(np.argmax(gap)), gap.shape) if gap.ndim else ()
    return (f"(shape {tuple(replayed.shape)}, {replayed.dtype}) differs by up to {gap[where]:.6g} at index "
            f"{tuple(int(i) for i in where)}: {r[where]!r} replayed, {e[where]!r} eager")
