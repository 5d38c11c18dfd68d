"""Reverse-mode autodiff: ``Function`` nodes and the backward engine (grad mode: ``grad_mode``).

A ``Function`` computes its outputs from input arrays in ``forward`` and keeps (in ``saved``) only
what ``backward`` needs. Outputs hold their creator; the creator holds its outputs by weakref, so
a graph has no reference cycles. Backward walks the graph latest-recorded first (a heap keyed by
the order of recording, which is a topological order: a function is recorded after the functions
that made its inputs; an iterative loop, so deep graphs cannot hit the recursion limit) and adds
gradients at branches.

Every tensor carries a version counter that in-place changes through the Tensor API bump
(``mark_changed``). Backward refuses to use a tensor that a function saved (``saves_inputs``,
``saves_output``) and that changed since (PyTorch's rule). Writing into the raw array ``.data`` is
not tracked, as with PyTorch's ``.data``.
"""
from __future__ import annotations

import heapq
import itertools
import weakref

import numpy as np

from .dtypes import accumulator
from .grad_mode import _state, enable_grad, is_grad_enabled, no_grad  # noqa: F401 -- re-exported


_FREED = object()
_serials = itertools.count()
# NOTE: one clock for every in-place change. A function notes the clock when recorded; a tensor's
# version box holds [its count of changes, the clock of its last change]. While the clock has not
# moved since a function was recorded, nothing it saved can have changed: backward checks nothing.
_clock = [0]


def mark_changed(tensor) -> None:
    """Record an in-place change of ``tensor`` (and of every tensor sharing its data and version box)."""
    box = tensor._version
    _clock[0] += 1
    box[0] += 1
    box[1] = _clock[0]


_make_tensor = _as_tensor_like = _tensor_type = _cpu = None  # bound by gpugrad.tensor (it imports this module)


class CaptureError(RuntimeError):
    """Something in a step given to ``gpugrad.compile`` cannot be captured and replayed."""


class HostReadError(CaptureError):
    """A captured step read a tensor's values on the host (``.item()``, ``.numpy()``, ``bool()``, ...)."""


# NOTE: the step that gpugrad.compile is capturing now (its recorder), or None. The engine hands
# every op's inputs to it (``arrays``), tells it each leaf that got a gradient (``leaf``), optimizers
# hand it their step (``host_call``), devices ask it before a host read (``check_host_read``).
step_capture = None
# NOTE: gpugrad.amp.cast_inputs while an autocast region is open in any thread, else None; it casts the
# inputs of Functions whose class sets ``amp`` ("low" or "float32").
autocast = None
# NOTE: data parallel (gpugrad.nn.parallel): id(leaf) -> callback(leaf) after a gradient was added to the
# leaf, and callbacks run when a backward ends. Empty unless a DistributedDataParallel is alive.
gradient_hooks: dict = {}
backward_end_hooks: list = []
# NOTE: Tensor.register_hook / retain_grad: id(tensor) -> [hook(grad) -> grad or None, ...]. Empty unless one has.
tensor_hooks: dict = {}


def check_values(check) -> None:
    """Run ``check()``, an input check that reads values (label or index ranges); inside a captured
    step, it runs at every replay instead, where the device allows a host read (the CPU)."""
    check() if step_capture is None else step_capture.guard(check)


def replayed_call(fn, owner, in_graph=None) -> bool:
    """Inside a captured step: run ``fn`` now and again at every replay (``owner``, an optimizer or the
    like, holds what it changes), and return True; outside one, return False (the caller runs it).
    ``in_graph()``, asked by a CUDA graph capture: a refresh to run before each launch if ``fn``'s kernels
    can join the graph, else None (``fn`` runs on the host between two graphs)."""
    if not capturing():
        return False
    step_capture.host_call(fn, owner, in_graph)
    return True


def capturing() -> bool:  # a step is being captured, and not paused for a host call
    return step_capture is not None and not step_capture.paused


def recorded(array):
    """``array`` as an in-place change must see it: inside a captured step, the capture's view of it."""
    return array if step_capture is None else step_capture.arrays(array)[0]


def check_host_read(what: str) -> None:
    """Raise ``HostReadError`` if a step is being captured: ``what`` names the read."""
    if capturing():
        raise HostReadError(
            f"gpugrad.compile: {what} reads a tensor's values on the host inside the captured step; a replay "
            "would reuse the value read at capture time. Read it after the step (the step's returned tensors "
            "hold their values until the next call: loss.item()), or run the step eagerly "
            "(gpugrad.compile(fn, enabled=False))")


def bind_tensor_type(tensor_type, as_tensor_like, cpu) -> None:
    global _make_tensor, _as_tensor_like, _tensor_type, _cpu
    _make_tensor, _as_tensor_like, _tensor_type, _cpu = tensor_type._make, as_tensor_like, tensor_type, cpu


class Function:
    """One node of the graph. Subclasses define ``forward(*arrays)`` and ``backward(*grads)``.

    ``forward`` receives backend arrays and returns one array (or a tuple); it stores what
    backward needs in ``self.saved``. ``backward`` receives the output gradients and returns one
    gradient per input (``None`` where ``self.needs_input_grad[i]`` is false).

    Class attributes say what the engine does around them:
    ``promotes``: None, "same" (inputs promoted to one dtype, PyTorch's rule) or "float" (that,
    then integers computed as float32); ``amp``: what the op runs in under ``gpugrad.autocast``;
    ``saves_inputs`` / ``saves_output``: which tensors backward reads (their versions are checked);
    ``is_view``: the output shares the input's memory (and so its version counter).
    """

    __slots__ = ("backend", "saved", "serial", "inputs", "needs_input_grad", "outputs", "retaining",
                 "clock", "__dict__", "__weakref__")
    promotes = None
    amp = None  # under gpugrad.autocast: "low" (runs in the autocast dtype) or "float32"; None: as given
    saves_inputs = True
    saves_output = False
    is_view = False

    def __call__(self, *inputs):
        self.saved = None
        if autocast is not None and self.amp is not None:
            inputs = autocast(self, inputs)
        # NOTE: one and two CPU tensors of one dtype spelled out: the per-op hot path of every model.
        n = len(inputs)
        if n == 2:
            first, second = inputs
            a = first.data if isinstance(first, _tensor_type) else None
            b = second.data if isinstance(second, _tensor_type) else None
            if a.__class__ is np.ndarray and b.__class__ is np.ndarray and a.dtype is b.dtype and (
                    self.promotes != "float" or a.dtype.kind == "f"):
                self.backend = _cpu
            else:  # Python numbers, mixed dtypes or devices, GPU arrays: the general rule
                first, second = _as_tensor_like(inputs, self)
                a, b = first.data, second.data
                self.backend = first.backend
            if self.backend is _cpu:
                outputs = self.forward(a, b) if step_capture is None else self.forward(*step_capture.arrays(a, b))
            else:
                outputs = self._forward_on_device((a, b))
            tensors = (first, second)
            needs = (first.requires_grad, second.requires_grad)
            record = needs[0] or needs[1]
        elif n == 1 and isinstance(first := inputs[0], _tensor_type) and (self.promotes != "float" or (
                first.data.dtype.kind == "f")):
            a = first.data
            if a.__class__ is np.ndarray:
                self.backend = _cpu
                outputs = self.forward(a) if step_capture is None else self.forward(*step_capture.arrays(a))
            else:
                self.backend = first.backend
                outputs = self._forward_on_device((a,))
            tensors = inputs
            record = first.requires_grad
            needs = (record,)
        else:
            tensors = _as_tensor_like(inputs, self)
            first = tensors[0]
            self.backend = first.backend
            outputs = self._forward_on_device([t.data for t in tensors])
            needs = tuple([t.requires_grad for t in tensors])
            record = True in needs
        if outputs.__class__ is not tuple:  # the common case: one output
            result = _make_tensor(outputs if outputs.__class__ is np.ndarray else _as_array(outputs), False)
            if self.is_view and result.data.base is not None:
                result._version = first._version
            if record and _state.enabled:
                self.serial = next(_serials)  # recording order: backward's order, and listings'
                self.clock = _clock[0]
                self.inputs = tensors
                self.needs_input_grad = needs
                result.requires_grad = True
                result.creator = self
                self.outputs = (weakref.ref(result),)
            else:
                self.saved = None
            return result
        results = tuple([_make_tensor(_as_array(y), False) for y in outputs])
        if record and _state.enabled:
            self.serial, self.clock = next(_serials), _clock[0]
            self.inputs, self.needs_input_grad = tensors, needs
            for y in results:
                y.requires_grad = True
                y.creator = self
            self.outputs = tuple([weakref.ref(y) for y in results])
        else:
            self.saved = None
        return results

    def _forward_on_device(self, arrays):
        """``forward`` inside the device's context (a GPU's: cuda:1 tensors launch on GPU 1)."""
        with self.backend.device_context():
            return self.forward(*arrays) if step_capture is None else self.forward(*step_capture.arrays(*arrays))

    def check_versions(self) -> None:
        """Raise if a tensor that backward needs was changed in place since it was saved."""
        saves = self.saves_inputs
        watched = [(t, f"input {i}") for i, t in enumerate(self.inputs) if saves is True or i in (saves or ())]
        if self.saves_output:
            watched += [(ref(), f"output {i}") for i, ref in enumerate(self.outputs)]
        for tensor, label in watched:
            if tensor is not None and tensor._version[1] > self.clock:
                raise RuntimeError(
                    f"{self.name}: {label} (a tensor of shape {tuple(tensor.shape)}, dtype {tensor.dtype}) was "
                    f"changed in place after {self.name} saved it for backward (it is at version "
                    f"{tensor._version[0]} now): backward would use the new values. Compute the graph again after "
                    "the change, or change a copy (.clone() / .detach() and an out-of-place op)")

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__


def _as_array(y):
    return np.asarray(y) if isinstance(y, np.generic) else y  # numpy returns scalars from 0-d inputs


def run_backward(root, grad, retain_graph: bool, capture: dict | None = None) -> None:
    """Accumulate d(root)/d(leaf) into every leaf that requires grad, inside the root's device context.

    With ``capture`` (a dict), nothing is written to ``.grad``: the gradient of every tensor of the
    graph, leaves and intermediates, goes into ``capture[id(tensor)] = (tensor, gradient)``.
    """
    with root.backend.device_context():
        _backward(root, grad, retain_graph, capture)


def _backward(root, grad, retain_graph, capture):
    # NOTE: pending maps id(tensor) -> summed gradient. The tensors themselves stay alive: the root
    # holds its creator, every function holds its inputs. Serials are unique: the heap never
    # compares two functions.
    pending = {id(root): grad}
    first = root.creator
    heap = [(-first.serial, first)]
    queued = {first}
    pop, push, freed, clock = heapq.heappop, heapq.heappush, _FREED, _clock[0]
    while heap:
        function = pop(heap)[1]
        if function.saved is freed:
            _second_backward(function)
        if function.clock != clock:
            function.check_versions()
        function.retaining = retain_graph
        outputs = function.outputs
        if len(outputs) == 1 and capture is None:  # the common case: one output, its gradient summed
            output = outputs[0]()
            upstream = pending.pop(id(output), None) if output is not None else None
            if upstream is None:
                upstream = _output_gradient(output, pending, None)
            if tensor_hooks and id(output) in tensor_hooks:
                upstream = _run_tensor_hooks(output, upstream)
            grad_inputs = function.backward(upstream)
        else:
            upstream = [_output_gradient(ref(), pending, capture) for ref in outputs]
            if tensor_hooks:
                upstream = [g if id(ref()) not in tensor_hooks else _run_tensor_hooks(ref(), g)
                            for ref, g in zip(outputs, upstream)]
            grad_inputs = function.backward(*upstream)
        if not retain_graph:
            function.saved = freed
        if grad_inputs.__class__ is not tuple:
            grad_inputs = (grad_inputs,)
        for tensor, grad_input, needed in zip(function.inputs, grad_inputs, function.needs_input_grad):
            if grad_input is None or not needed:
                continue
            data = tensor.data
            if grad_input.__class__ is not data.__class__ or grad_input.dtype is not data.dtype or (
                    grad_input.shape != data.shape):
                grad_input = _checked_gradient(function, tensor, grad_input)
            creator = tensor.creator
            if creator is None:
                if capture is None:
                    _accumulate_leaf(tensor, grad_input, upstream)
                else:
                    previous = capture.get(id(tensor))
                    capture[id(tensor)] = (tensor, grad_input if previous is None else previous[1] + grad_input)
                continue
            key = id(tensor)
            previous = pending.get(key)
            pending[key] = grad_input if previous is None else previous + grad_input
            if creator not in queued:
                queued.add(creator)
                push(heap, (-creator.serial, creator))
    if backward_end_hooks and capture is None:
        for hook in list(backward_end_hooks):
            hook()


def _output_gradient(output, pending, capture):
    """The summed gradient of one output of a function (None for an output that no longer exists)."""
    if output is None:
        return None
    g = pending.pop(id(output), None)
    if g is None:  # an output nobody used: its gradient is zero
        return output.backend.xp.zeros(output.data.shape, output.data.dtype)
    if capture is not None:
        capture[id(output)] = (output, g)
    return g


def _run_tensor_hooks(tensor, grad):
    """The gradient of ``tensor`` after its hooks (each may return a replacement)."""
    if step_capture is not None:
        raise CaptureError("gpugrad.compile: a tensor hook (register_hook, retain_grad) inside a captured step would "
                           "not run at replays; run the step eagerly (gpugrad.compile(fn, enabled=False))")
    for hook in sorted(tensor_hooks.get(id(tensor), ()), key=lambda h: getattr(h, "retains", False)):  # retain_grad last
        result = hook(_make_tensor(grad, False))
        if result is not None:
            grad = result.data if isinstance(result, _tensor_type) else result
    return grad


def _accumulate_leaf(tensor, grad, upstream) -> None:
    """Add ``grad`` into ``tensor.grad``; ``upstream`` is what the function got (an array, or a list of them)."""
    if tensor_hooks and id(tensor) in tensor_hooks:
        grad = _run_tensor_hooks(tensor, grad)
    if step_capture is not None:
        step_capture.leaf(tensor)
    if tensor.grad is not None:
        tensor.grad.data = _as_array(tensor.grad.data + grad)
    else:
        # NOTE: .grad must own its memory: a view, or an upstream gradient passed straight through,
        # may alias an array that the graph or the cached unit gradient still uses.
        if (grad.base is not None and (step_capture is None or step_capture.is_view(grad))) or grad is upstream or (
                upstream.__class__ is list and any(grad is u for u in upstream)):
            grad = grad.copy()
        tensor.grad = _make_tensor(grad, False)
    if gradient_hooks:
        hook = gradient_hooks.get(id(tensor))
        if hook is not None:
            hook(tensor)


def _second_backward(function) -> None:
    raise RuntimeError(f"Trying to backward through the graph a second time ({function.name} has already freed what "
                       "it saved). Pass retain_graph=True to the first backward() if you need to backward through the "
                       "graph again.")


def _checked_gradient(function, tensor, grad):
    """``grad`` as an array of the input's shape and dtype (a numpy scalar made 0-d), or the error naming the op."""
    grad = _as_array(grad)
    data = tensor.data
    if grad.shape != data.shape or grad.dtype != data.dtype:
        raise RuntimeError(f"{function.name} returned a gradient of shape {tuple(grad.shape)} and dtype {grad.dtype} "
                           f"for an input of shape {tuple(tensor.shape)} and dtype {tensor.dtype}")
    return grad


def sum_to(grad, shape):
    """Undo broadcasting: sum ``grad`` down to ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1)
    summed = grad.sum(axis=axes, keepdims=True, dtype=accumulator(grad.dtype))
    if lead:
        summed = summed.reshape(summed.shape[lead:])
    return summed.astype(grad.dtype, copy=False)
