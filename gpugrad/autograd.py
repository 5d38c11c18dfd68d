"""Reverse-mode autodiff: ``Function`` nodes, grad mode, and the backward engine.

A ``Function`` computes its outputs from input arrays in ``forward`` and keeps (in ``saved``) only
what ``backward`` needs. Outputs hold their creator; the creator holds its outputs by weakref, so
a graph has no reference cycles. Backward walks the graph with a heap ordered by generation (an
iterative loop: deep graphs cannot hit the recursion limit) and adds gradients at branches.
"""
from __future__ import annotations

import contextlib
import heapq
import threading
import weakref

import numpy as np

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


class _GradMode(contextlib.ContextDecorator):
    enabled = True

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


_FREED = object()
_make_tensor = _as_tensor_like = None  # bound by gpugrad.tensor (it imports this module)


def bind_tensor_type(make_tensor, as_tensor_like) -> None:
    global _make_tensor, _as_tensor_like
    _make_tensor, _as_tensor_like = make_tensor, as_tensor_like


class Function:
    """One node of the graph. Subclasses define ``forward(*arrays)`` and ``backward(*grads)``.

    ``forward`` receives backend arrays and returns one array (or a tuple); it stores what
    backward needs in ``self.saved``. ``backward`` receives the output gradients and returns one
    gradient per input (``None`` where ``self.needs_input_grad[i]`` is false).
    """

    saved = None
    generation = 0

    def __call__(self, *inputs):
        tensors = _as_tensor_like(inputs, type(self).__name__)
        self.backend = tensors[0].backend
        outputs = self.forward(*[t.data for t in tensors])
        single = not isinstance(outputs, tuple)
        if single:
            outputs = (outputs,)
        record = is_grad_enabled() and any(t.requires_grad for t in tensors)
        # NOTE: numpy returns scalars, not 0-d arrays, from ops on 0-d arrays.
        results = [_make_tensor(np.asarray(y) if isinstance(y, np.generic) else y, record) for y in outputs]
        if record:
            self.inputs = tensors
            self.needs_input_grad = tuple(t.requires_grad for t in tensors)
            self.generation = max(t.generation for t in tensors)
            for y in results:
                y.creator = self
                y.generation = self.generation + 1
            self.outputs = [weakref.ref(y) for y in results]
        else:
            self.saved = None
        return results[0] if single else tuple(results)

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    def __lt__(self, other):  # heap tie-break; the generation decides the order
        return id(self) < id(other)

    @property
    def name(self) -> str:
        return type(self).__name__


def run_backward(root, grad, retain_graph: bool) -> None:
    """Accumulate d(root)/d(leaf) into every leaf that requires grad."""
    pending = {id(root): [root, grad]}  # id(tensor) -> [tensor, summed gradient array]
    heap: list = []
    queued = set()

    def push(function):
        if id(function) not in queued:
            queued.add(id(function))
            heapq.heappush(heap, (-function.generation, function))

    push(root.creator)
    while heap:
        _, function = heapq.heappop(heap)
        if function.saved is _FREED:
            raise RuntimeError(
                f"Trying to backward through the graph a second time ({function.name} has already "
                "freed what it saved). Pass retain_graph=True to the first backward() if you need "
                "to backward through the graph again."
            )
        grad_outputs = []
        for ref in function.outputs:
            output = ref()
            entry = pending.pop(id(output), None) if output is not None else None
            if entry is None and output is not None:
                entry = [output, output.backend.xp.zeros(output.shape, output.dtype)]
            elif entry is None:
                entry = [None, None]
            grad_outputs.append(entry[1])
        if all(g is None for g in grad_outputs):
            continue
        grad_inputs = function.backward(*grad_outputs)
        if not isinstance(grad_inputs, tuple):
            grad_inputs = (grad_inputs,)
        if not retain_graph:
            function.saved = _FREED
        for tensor, grad_input, needed in zip(function.inputs, grad_inputs, function.needs_input_grad):
            if not needed or grad_input is None:
                continue
            if isinstance(grad_input, np.generic):
                grad_input = np.asarray(grad_input)
            _check_gradient(function, tensor, grad_input)
            if tensor.creator is None:
                if tensor.grad is None:
                    tensor.grad = _make_tensor(grad_input.copy() if _shares(grad_input, grad_outputs) else grad_input, False)
                else:
                    tensor.grad.data = tensor.grad.backend.xp.add(tensor.grad.data, grad_input, out=None)
                    if isinstance(tensor.grad.data, np.generic):
                        tensor.grad.data = np.asarray(tensor.grad.data)
                continue
            entry = pending.get(id(tensor))
            if entry is None:
                pending[id(tensor)] = [tensor, grad_input]
            else:
                entry[1] = entry[1] + grad_input
            push(tensor.creator)


def _shares(array, others) -> bool:
    # A function may hand its output gradient straight through; never store an alias as .grad.
    return any(array is other for other in others)


def _check_gradient(function, tensor, grad) -> None:
    if grad.shape != tensor.shape or grad.dtype != tensor.dtype:
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
