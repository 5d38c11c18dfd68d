"""The graph's nodes: ``Function`` (an op's forward on arrays, its backward, and the call that records it),
what the engine knows of a tensor (``TensorBase``), and an op's operands brought to one device and dtype
(``as_tensor_like``, with the ``Cast`` node it records). The backward pass is in ``autograd``.

Every tensor carries a version counter that in-place changes through the Tensor API bump
(``mark_changed``). Backward refuses to use a tensor that a function saved (``saves_inputs``,
``saves_output``) and that changed since (PyTorch's rule).
"""
from __future__ import annotations

import itertools
import numbers
import weakref

import numpy as np

from .backend import _CPU, backend_of, is_cupy_array
from .dtypes import DEFAULT_FLOAT, accumulator, check_numeric, is_float, result_type
from .grad_mode import _state
from .seam import features


class TensorBase:
    """What the engine asks of a tensor: ``data`` (the array), ``requires_grad``, ``creator``, ``_version``,
    ``backend`` and ``_wrap(array)``, the op result made from an array (``gpugrad.Tensor`` is the one
    subclass: ops on a ``Parameter`` give ``Tensor``s, as PyTorch). Op outputs are made by their inputs'
    ``_wrap``, so the engine needs no import of the class with the methods, which stands above the ops."""
    __slots__ = ()


class DeviceMismatchError(RuntimeError):
    """An operation got tensors that live on different devices."""


def check_device(op, what, tensor, backend, of="input", plural=False, detail=""):
    """A tensor an op takes beside its input (an index, labels, a condition) must be on the input's ``backend``, as
    PyTorch requires: else one line naming the op, the role and both devices."""
    if tensor.backend is not backend:
        raise DeviceMismatchError(
            f"{op}: the {what} {'are' if plural else 'is'} on {tensor.backend.name} and the {of} on {backend.name}"
            f"{detail}; move {'them' if plural else 'it'} with .to({backend.name!r})")


_FREED = object()  # what a function saved, once a backward without retain_graph freed it
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
        capture = features.capture
        if features.autocast is not None and self.amp is not None:
            inputs = features.autocast(self, inputs)
        # NOTE: one and two CPU tensors of one dtype spelled out: the per-op hot path of every model.
        n = len(inputs)
        if n == 2:
            first, second = inputs
            a = first.data if isinstance(first, TensorBase) else None
            b = second.data if isinstance(second, TensorBase) else None
            if a.__class__ is np.ndarray and b.__class__ is np.ndarray and a.dtype is b.dtype and (
                    self.promotes != "float" or a.dtype.kind == "f"):
                self.backend = _CPU
            else:  # Python numbers, mixed dtypes or devices, GPU arrays: the general rule
                first, second = as_tensor_like(inputs, self)
                a, b = first.data, second.data
                self.backend = first.backend
            if self.backend is _CPU:
                outputs = self.forward(a, b) if capture is None else self.forward(*capture.arrays(a, b))
            else:
                outputs = self._forward_on_device((a, b))
            tensors = (first, second)
            needs = (first.requires_grad, second.requires_grad)
            record = needs[0] or needs[1]
        elif n == 1 and isinstance(first := inputs[0], TensorBase) and (self.promotes != "float" or (
                first.data.dtype.kind == "f")):
            a = first.data
            if a.__class__ is np.ndarray:
                self.backend = _CPU
                outputs = self.forward(a) if capture is None else self.forward(*capture.arrays(a))
            else:
                self.backend = first.backend
                outputs = self._forward_on_device((a,))
            tensors = inputs
            record = first.requires_grad
            needs = (record,)
        else:
            tensors = as_tensor_like(inputs, self)
            first = tensors[0]
            self.backend = first.backend
            outputs = self._forward_on_device([t.data for t in tensors])
            needs = tuple([t.requires_grad for t in tensors])
            record = True in needs
        if capture is not None:  # a capture guards on the tensors a step reads
            capture.read(tensors)
        if outputs.__class__ is not tuple:  # the common case: one output
            result = first._wrap(outputs if outputs.__class__ is np.ndarray else _as_array(outputs))
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
        results = tuple([first._wrap(_as_array(y)) for y in outputs])
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
            capture = features.capture
            return self.forward(*arrays) if capture is None else self.forward(*capture.arrays(*arrays))

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


class Cast(Function):
    """A dtype conversion; the gradient goes back in the input's dtype (recorded by ``as_tensor_like``)."""
    saves_inputs = ()

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.saved = x.dtype
        return x.astype(self.dtype)

    def backward(self, grad_output):
        return grad_output.astype(self.saved)


def as_tensor_like(values, op):
    """Turn an op's inputs into tensors on one device.

    ``op`` is the Function (or a name). Where the function ``promotes``, the inputs are brought to
    one dtype by PyTorch's rule (``dtypes.result_type``; a Cast node gives each input its gradient
    in its own dtype) and, for "float", integers become float32.
    """
    promotes = getattr(op, "promotes", None)
    n = len(values)
    if n == 1 and isinstance(values[0], TensorBase):
        if promotes == "float" and not is_float(values[0].data.dtype):
            return [values[0]._wrap(values[0].data.astype(DEFAULT_FLOAT))]  # integers never require grad
        return values
    if n == 2:  # the hot paths: two tensors on one device with one dtype; a float CPU tensor and a Python number
        a, b = values
        if isinstance(a, TensorBase) and isinstance(b, TensorBase) and a.data.__class__ is b.data.__class__ and \
                a.data.dtype == b.data.dtype and (promotes != "float" or is_float(a.data.dtype)) and (
                a.data.__class__ is np.ndarray or a.backend is b.backend):
            return values
        number = b if isinstance(a, TensorBase) else a
        tensor = a if number is b else b
        if (number.__class__ is float or number.__class__ is int) and isinstance(tensor, TensorBase) and (
                tensor.data.__class__ is np.ndarray and tensor.data.dtype.kind == "f"):
            number = tensor._wrap(_CPU.constant(number, tensor.data.dtype))  # PyTorch's rule: the tensor's dtype
            return [tensor, number] if tensor is a else [number, tensor]
    elif n > 2 and all(isinstance(v, TensorBase) and v.data.__class__ is np.ndarray for v in values) and len(
            {v.data.dtype for v in values}) == 1 and (promotes != "float" or is_float(values[0].data.dtype)):
        return values  # CPU tensors of one dtype (a linear layer's input, weight and bias)
    op_name = op if isinstance(op, str) else op.name
    if n == 0:
        raise ValueError(f"{op_name}: needs at least one tensor, got none")
    first = None
    for value in values:
        if isinstance(value, TensorBase):
            if first is None:
                first = value
            elif value.backend is not first.backend:
                raise DeviceMismatchError(
                    f"{op_name}: expected all tensors on one device, got {first.device} and {value.device}"
                )
    if first is None:
        raise TypeError(f"{op_name}: expected at least one tensor among its operands, got "
                        f"{', '.join(type(v).__name__ for v in values)}")
    backend = first.backend
    arrays = []
    for value in values:
        if isinstance(value, TensorBase) or _is_python_number(value):
            arrays.append(value)
        elif isinstance(value, np.generic):  # a numpy scalar is a host number: it goes where the tensors are
            arrays.append(first._wrap(backend.asarray(np.asarray(value))))
        elif isinstance(value, np.ndarray) or is_cupy_array(value):
            if backend_of(value) is not backend:
                raise DeviceMismatchError(
                    f"{op_name}: got an array on {backend_of(value).name} and a tensor on {backend.name}; "
                    "move it explicitly with gpugrad.tensor(..., device=...) or .to()"
                )
            arrays.append(first._wrap(backend.asarray(value)))
        elif isinstance(value, (list, tuple)):
            array = check_numeric(np.asarray(value, dtype=first.dtype if first is not None else None), op_name)
            arrays.append(first._wrap(backend.asarray(array)))
        else:
            raise TypeError(f"{op_name}: unsupported operand of type {type(value).__name__}")
    dtype = result_type(*arrays)
    if promotes == "float" and not is_float(dtype):
        dtype = DEFAULT_FLOAT
    out = []
    for value in arrays:
        if not isinstance(value, TensorBase):  # a Python number takes the result's dtype
            out.append(first._wrap(backend.constant(value, dtype)))
        elif promotes and value.data.dtype != dtype:
            out.append(Cast(dtype)(value) if value.requires_grad else
                       first._wrap(value.data.astype(dtype)))
        else:
            out.append(value)
    return out


def _is_python_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, np.generic)


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
