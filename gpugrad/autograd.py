"""Reverse-mode autodiff: the backward engine (the nodes it walks: ``function``; grad mode: ``grad_mode``;
what features plug into it: ``seam``).

A ``Function`` computes its outputs from input arrays in ``forward`` and keeps (in ``saved``) only
what ``backward`` needs. Outputs hold their creator; the creator holds its outputs by weakref, so
a graph has no reference cycles. Backward walks the graph latest-recorded first (a heap keyed by
the order of recording, which is a topological order: a function is recorded after the functions
that made its inputs; an iterative loop, so deep graphs cannot hit the recursion limit) and adds
gradients at branches. It refuses to use a tensor that a function saved and that changed in place since
(PyTorch's rule); writing into the raw array ``.data`` is not tracked, as with PyTorch's ``.data``.
"""
from __future__ import annotations

import heapq

from .function import (_FREED, Cast, DeviceMismatchError, Function, TensorBase, _as_array, _clock,  # noqa: F401
                       as_tensor_like, mark_changed, sum_to)
from .grad_mode import _state, enable_grad, is_grad_enabled, no_grad  # noqa: F401 -- re-exported
from .seam import (CaptureError, HostReadError, capturing, check_host_read, check_values, features,  # noqa: F401
                   recorded, replayed_call)


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
    tensor_hooks = features.tensor_hooks
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
    if features.backward_end_hooks and capture is None:
        for hook in list(features.backward_end_hooks):
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
    if features.capture is not None:
        raise CaptureError("gpugrad.compile: a tensor hook (register_hook, retain_grad) inside a captured step would "
                           "not run at replays; run the step eagerly (gpugrad.compile(fn, enabled=False))")
    for hook in sorted(features.tensor_hooks.get(id(tensor), ()), key=lambda h: getattr(h, "retains", False)):
        result = hook(tensor._wrap(grad))  # retain_grad's hook sorts last
        if result is not None:
            grad = result.data if isinstance(result, TensorBase) else result
    return grad


def _accumulate_leaf(tensor, grad, upstream) -> None:
    """Add ``grad`` into ``tensor.grad``; ``upstream`` is what the function got (an array, or a list of them)."""
    if features.tensor_hooks and id(tensor) in features.tensor_hooks:
        grad = _run_tensor_hooks(tensor, grad)
    capture = features.capture
    if capture is not None:
        capture.leaf(tensor)
    if tensor.grad is not None:
        tensor.grad.data = _as_array(tensor.grad.data + grad)
    else:
        # NOTE: .grad must own its memory: a view, or an upstream gradient passed straight through,
        # may alias an array that the graph or the cached unit gradient still uses.
        if (grad.base is not None and (capture is None or capture.is_view(grad))) or grad is upstream or (
                upstream.__class__ is list and any(grad is u for u in upstream)):
            grad = grad.copy()
        tensor.grad = tensor._wrap(grad)
    if features.gradient_hooks:
        hook = features.gradient_hooks.get(id(tensor))
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
