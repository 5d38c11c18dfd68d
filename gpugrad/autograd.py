"""Reverse-mode autodiff: ``Function`` nodes, grad mode, and the backward engine.

A ``Function`` computes its outputs from input arrays in ``forward`` and keeps (in ``saved``) only
what ``backward`` needs. Outputs hold their creator; the creator holds its outputs by weakref, so
a graph has no reference cycles. Backward walks the graph latest-recorded first (a heap keyed by
the order of recording, which is a topological order: a function is recorded after the functions
that made its inputs; an iterative loop, so deep graphs cannot hit the recursion limit) and adds
gradients at branches.

Recording a call and the backward loop run in C (``gpugrad/_engine.c``) where that optional
extension was built; the Python versions here (``_call_python``, ``_run_backward_python``) are the
reference, run where it was not (or with ``GPUGRAD_PURE_PYTHON=1``), and are what the C code calls
back for every case it does not take itself.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import weakref

import numpy as np


class _State(threading.local):
    # NOTE: a class default, not getattr(local, "enabled", True): a missing attribute of a thread-local
    # raises and catches AttributeError inside getattr, 8x slower (0.36 against 0.04 us), every op.
    enabled = True


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


class _GradMode(contextlib.ContextDecorator):
    enabled = True

    def _recreate_cm(self):  # a fresh instance per decorated call: recursion and threads nest correctly
        return type(self)()

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.enabled = self.enabled
        return self

    def __exit__(self, *exc_info):
        _state.enabled = self._previous
        return False


class no_grad(_GradMode):
    """Context manager and decorator: operations inside record no graph."""
    enabled = False


class enable_grad(_GradMode):
    """Context manager and decorator: turn recording back on inside ``no_grad``."""
    enabled = True


def _import_engine():
    """The C parts (``gpugrad/_engine.c``), or None where the extension was not built or
    ``GPUGRAD_PURE_PYTHON=1`` turns it off: then the same code runs in Python."""
    if os.environ.get("GPUGRAD_PURE_PYTHON", "0") == "1":
        return None
    try:
        from . import _engine as engine
    except ImportError:
        return None
    return engine


_engine = _import_engine()
_FunctionBase = object if _engine is None else _engine.FunctionBase
_FREED = object()
_serials = itertools.count()
_make_tensor = _as_tensor_like = _tensor_type = _cpu = None  # bound by gpugrad.tensor (it imports this module)
_ndarray = np.ndarray


def bind_tensor_type(tensor_type, as_tensor_like, cpu_backend) -> None:
    global _make_tensor, _as_tensor_like, _tensor_type, _cpu
    _make_tensor, _as_tensor_like, _tensor_type, _cpu = tensor_type._make, as_tensor_like, tensor_type, cpu_backend
    if _engine is not None:  # NOTE: every function named here is defined below; this runs after the import
        _engine.configure(tensor_type, np.ndarray, cpu_backend, _state, _serials, _call_python, _finish_many, _FREED,
                          _accumulate_leaf, _output_gradient, _gradient_error, _second_backward, _as_array)


class Function(_FunctionBase):
    """One node of the graph. Subclasses define ``forward(*arrays)`` and ``backward(*grads)``.

    ``forward`` receives backend arrays and returns one array (or a tuple); it stores what
    backward needs in ``self.saved``. ``backward`` receives the output gradients and returns one
    gradient per input (``None`` where ``self.needs_input_grad[i]`` is false).
    """

    # NOTE: slots, not a dict per node (ops add their own attributes through __dict__). ``retaining``
    # is set by the engine: True while a retain_graph backward runs. Calling a Function records it:
    # ``_engine.FunctionBase`` does that in C for CPU tensors and hands every other case to
    # ``_call_python``, which is also ``__call__`` itself where the extension is not built.
    __slots__ = ("backend", "saved", "serial", "inputs", "needs_input_grad", "outputs", "retaining",
                 "__dict__", "__weakref__")

    def _record(self, tensors, needs, results):
        self.serial = next(_serials)
        self.inputs = tensors
        self.needs_input_grad = needs
        for y in results:
            y.creator = self
        self.outputs = tuple([weakref.ref(y) for y in results])

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__


def _call_python(self, *inputs):
    """``Function.__call__``: forward on the inputs' arrays, the output wrapped, the node recorded."""
    self.saved = None
    n = len(inputs)
    if n == 1 and isinstance(inputs[0], _tensor_type):
        tensors = inputs
    elif n == 2 and isinstance(inputs[0], _tensor_type) and isinstance(inputs[1], _tensor_type) \
            and inputs[0].data.__class__ is _ndarray and inputs[1].data.__class__ is _ndarray:
        tensors = inputs  # two CPU tensors: nothing to convert or check
    else:
        tensors = _as_tensor_like(inputs, self)
    first = tensors[0]
    self.backend = backend = _cpu if first.data.__class__ is _ndarray else first.backend
    # NOTE: one and two inputs spelled out: this is the per-op hot path of every model.
    if len(tensors) == 1:
        outputs = self.forward(first.data)
        needs = (first.requires_grad,)
    elif len(tensors) == 2:
        second = tensors[1]
        outputs = self.forward(first.data, second.data)
        needs = (first.requires_grad, second.requires_grad)
    else:
        outputs = self.forward(*[t.data for t in tensors])
        needs = tuple([t.requires_grad for t in tensors])
    record = True in needs and _state.enabled
    if outputs.__class__ is not tuple:  # the common case: one output
        if outputs.__class__ is not backend.array_type:
            outputs = _as_array(outputs)  # numpy returns scalars, not 0-d arrays, from 0-d inputs
        result = _make_tensor(outputs, record)
        if record:  # NOTE: _record spelled out for one output (the hot path); keep the two alike
            self.serial = next(_serials)  # recording order: backward's order, and listings'
            self.inputs = tensors
            self.needs_input_grad = needs
            result.creator = self
            self.outputs = (weakref.ref(result),)
        else:
            self.saved = None
        return result
    return _finish_many(self, tensors, needs, outputs, record)


def _finish_many(self, tensors, needs, outputs, record):
    """A function with several outputs: a tensor for each, recorded as one node."""
    results = tuple(_make_tensor(_as_array(y), record) for y in outputs)
    if record:
        self._record(tensors, needs, results)
    else:
        self.saved = None
    return results


if _engine is None:
    Function.__call__ = _call_python


def _as_array(y):
    return np.asarray(y) if isinstance(y, np.generic) else y


def run_backward(root, grad, retain_graph: bool, capture: dict | None = None) -> None:
    """Accumulate d(root)/d(leaf) into every leaf that requires grad.

    With ``capture`` (a dict), nothing is written to ``.grad``: the gradient of every tensor of the
    graph, leaves and intermediates, goes into ``capture[id(tensor)] = (tensor, gradient)``.
    The loop runs in C (``gpugrad._engine``) where that extension was built, else in Python
    (``_run_backward_python``): the same walk, the same arithmetic in the same order.
    """
    if capture is None and _engine is not None:
        _engine.run_backward(root, grad, retain_graph)
    else:
        _run_backward_python(root, grad, retain_graph, capture)


def _run_backward_python(root, grad, retain_graph: bool, capture: dict | None = None) -> None:
    # NOTE: pending maps id(tensor) -> summed gradient. The tensors themselves stay alive: the root
    # holds its creator, every function holds its inputs. This loop runs once per node of every
    # step: each line here costs about 0.05 us per node, so the common case (one output, no
    # capture) takes the shortest way.
    pending = {id(root): grad}
    first = root.creator
    # NOTE: serials are unique: the heap never compares two functions.
    heap = [(-first.serial, first)]
    queued = {first}  # functions hash by identity
    pop, push, freed, simple = heapq.heappop, heapq.heappush, _FREED, capture is None
    while heap:
        function = pop(heap)[1]
        if function.saved is freed:
            _second_backward(function)
        outputs = function.outputs
        function.retaining = retain_graph
        if simple and len(outputs) == 1:
            upstream = pending.pop(id(outputs[0]()), None)
            if upstream is None:
                upstream = _output_gradient(outputs[0](), pending, None)
            grad_inputs = function.backward(upstream)
        else:
            upstream = [_output_gradient(ref(), pending, capture) for ref in outputs]
            grad_inputs = function.backward(*upstream)
        if not retain_graph:
            function.saved = freed
        if grad_inputs.__class__ is not tuple:
            grad_inputs = (grad_inputs,)
        for tensor, grad_input, needed in zip(function.inputs, grad_inputs, function.needs_input_grad):
            if not needed or grad_input is None:
                continue
            data = tensor.data
            if grad_input.__class__ is not data.__class__ and isinstance(grad_input, np.generic):
                grad_input = np.asarray(grad_input)
            if grad_input.shape != data.shape or (grad_input.dtype is not data.dtype and grad_input.dtype != data.dtype):
                _gradient_error(function, tensor, grad_input)
            creator = tensor.creator
            if creator is None:
                if simple:
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


def _accumulate_leaf(tensor, grad, upstream) -> None:
    """Add ``grad`` into ``tensor.grad``; ``upstream`` is what the function got: one array or a list."""
    if tensor.grad is not None:
        total = tensor.grad.data + grad
        tensor.grad.data = np.asarray(total) if isinstance(total, np.generic) else total
        return
    # NOTE: .grad must own its memory: a view, or an upstream gradient passed straight through,
    # may alias an array that the graph or the cached unit gradient still uses.
    if grad.base is not None or grad is upstream or (upstream.__class__ is list and any(grad is u for u in upstream)):
        grad = grad.copy()
    tensor.grad = _make_tensor(grad, False)


def _second_backward(function) -> None:
    raise RuntimeError(
        f"Trying to backward through the graph a second time ({function.name} has already "
        "freed what it saved). Pass retain_graph=True to the first backward() if you need "
        "to backward through the graph again."
    )


def _gradient_error(function, tensor, grad) -> None:
    raise RuntimeError(
        f"{function.name} returned a gradient of shape {tuple(grad.shape)} and dtype {grad.dtype} "
        f"for an input of shape {tuple(tensor.shape)} and dtype {tensor.dtype}"
    )


def sum_to(grad, shape):
    """Undo broadcasting: sum ``grad`` down to ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1)
    summed = grad.sum(axis=axes, keepdims=True, dtype=np.float32 if grad.dtype == np.float16 else None)
    if lead:
        summed = summed.reshape(summed.shape[lead:])
    return summed.astype(grad.dtype, copy=False)
