"""An op's operands as tensors on one device and of one dtype: Python numbers, arrays and lists are
wrapped, devices are checked, and dtypes promoted by PyTorch's rule (``dtypes.result_type``)."""
from __future__ import annotations

import numbers

import numpy as np

from . import autograd
from .backend import _CPU, backend_of, is_cupy_array
from .dtypes import DEFAULT_FLOAT, check_numeric, is_float, result_type
from .ops import shape as shape_ops

_Tensor = None  # bound by gpugrad.tensor, which imports this module


def bind(tensor_type) -> None:
    global _Tensor
    _Tensor = tensor_type


class DeviceMismatchError(RuntimeError):
    """An operation got tensors that live on different devices."""


def as_tensor_like(values, op):
    """Turn an op's inputs into tensors on one device.

    ``op`` is the Function (or a name). Where the function ``promotes``, the inputs are brought to
    one dtype by PyTorch's rule (``dtypes.result_type``; a Cast node gives each input its gradient
    in its own dtype) and, for "float", integers become float32.
    """
    promotes = getattr(op, "promotes", None)
    n = len(values)
    if n == 1 and isinstance(values[0], _Tensor):
        if promotes == "float" and not is_float(values[0].data.dtype):
            return [_Tensor._make(values[0].data.astype(DEFAULT_FLOAT), False)]  # integers never require grad
        return values
    if n == 2:  # the hot paths: two tensors on one device with one dtype; a float CPU tensor and a Python number
        a, b = values
        if isinstance(a, _Tensor) and isinstance(b, _Tensor) and a.data.__class__ is b.data.__class__ and \
                a.data.dtype == b.data.dtype and (promotes != "float" or is_float(a.data.dtype)) and (
                a.data.__class__ is np.ndarray or a.backend is b.backend):
            return values
        number = b if isinstance(a, _Tensor) else a
        tensor = a if number is b else b
        if (number.__class__ is float or number.__class__ is int) and isinstance(tensor, _Tensor) and (
                tensor.data.__class__ is np.ndarray and tensor.data.dtype.kind == "f"):
            number = _Tensor._make(_CPU.constant(number, tensor.data.dtype), False)  # PyTorch's rule: the tensor's dtype
            return [tensor, number] if tensor is a else [number, tensor]
    elif n > 2 and all(isinstance(v, _Tensor) and v.data.__class__ is np.ndarray for v in values) and len(
            {v.data.dtype for v in values}) == 1 and (promotes != "float" or is_float(values[0].data.dtype)):
        return values  # CPU tensors of one dtype (a linear layer's input, weight and bias)
    op_name = op if isinstance(op, str) else op.name
    if n == 0:
        raise ValueError(f"{op_name}: needs at least one tensor, got none")
    first = None
    for value in values:
        if isinstance(value, _Tensor):
            if first is None:
                first = value
            elif value.backend is not first.backend:
                raise DeviceMismatchError(
                    f"{op_name}: expected all tensors on one device, got {first.device} and {value.device}"
                )
    backend = first.backend if first is not None else _CPU
    arrays = []
    for value in values:
        if isinstance(value, _Tensor) or _is_python_number(value):
            arrays.append(value)
        elif isinstance(value, np.generic):  # a numpy scalar is a host number: it goes where the tensors are
            arrays.append(_Tensor._make(backend.asarray(np.asarray(value)), False))
        elif isinstance(value, np.ndarray) or is_cupy_array(value):
            if backend_of(value) is not backend:
                raise DeviceMismatchError(
                    f"{op_name}: got an array on {backend_of(value).name} and a tensor on {backend.name}; "
                    "move it explicitly with gpugrad.tensor(..., device=...) or .to()"
                )
            arrays.append(_Tensor._make(backend.asarray(value), False))
        elif isinstance(value, (list, tuple)):
            array = check_numeric(np.asarray(value, dtype=first.dtype if first is not None else None), op_name)
            arrays.append(_Tensor._make(backend.asarray(array), False))
        else:
            raise TypeError(f"{op_name}: unsupported operand of type {type(value).__name__}")
    dtype = result_type(*arrays)
    if promotes == "float" and not is_float(dtype):
        dtype = DEFAULT_FLOAT
    out = []
    for value in arrays:
        if not isinstance(value, _Tensor):  # a Python number takes the result's dtype
            out.append(_Tensor._make(backend.constant(value, dtype), False))
        elif promotes and value.data.dtype != dtype:
            out.append(shape_ops.Cast(dtype)(value) if value.requires_grad else
                       _Tensor._make(value.data.astype(dtype), False))
        else:
            out.append(value)
    return out


def _index_data(index, tensor):
    """Tensors used as indices become arrays on the indexed tensor's device."""
    items = index if isinstance(index, tuple) else (index,)
    converted = []
    for item in items:
        if isinstance(item, _Tensor):
            item = item.data
        elif isinstance(item, float):
            raise IndexError(f"indexing a tensor of shape {tensor.shape}: float {item} is not a valid index")
        elif isinstance(item, list):
            item = np.asarray(item)
        if isinstance(item, np.ndarray) and tensor.device != "cpu":
            item = tensor.backend.asarray(item)
        converted.append(item)
    return tuple(converted) if isinstance(index, tuple) else converted[0]


def _is_python_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, np.generic)


def _shape(shape, op="shape"):
    """A shape given as integers or one tuple/list of them; anything else is refused, not truncated."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) and not (isinstance(n, _Tensor) and n.ndim == 0
                                                                                and n.dtype.kind in "iu"):
            raise TypeError(f"{op}: sizes must be integers, got {tuple(shape)!r}")
    return tuple(int(n) for n in shape)



def _check_in_place(tensor, other, op):
    if autograd.is_grad_enabled() and (tensor.requires_grad or getattr(other, "requires_grad", False)):
        raise RuntimeError(f"{op}: in-place change of a tensor that requires grad while recording a graph; "
                           "wrap it in gpugrad.no_grad() (or use an out-of-place op)")


def update_in_place(tensor, other, ufunc_name, op):
    """``tensor <op>= other`` through the ufunc, casting as numpy's "same_kind"; bumps the version."""
    _check_in_place(tensor, other, op)
    value = as_tensor_like((tensor, other), op)[1].data
    data = autograd.recorded(tensor.data)
    try:
        getattr(tensor.backend.xp, ufunc_name)(data, value, out=data, casting="same_kind")
    except (TypeError, ValueError) as error:  # numpy's casting and broadcasting errors
        raise (TypeError if isinstance(error, TypeError) else ValueError)(
            f"{op}: cannot update a tensor of shape {tensor.shape} and dtype {tensor.dtype} in place with one of "
            f"shape {tuple(value.shape)} and dtype {value.dtype}") from None
    autograd.mark_changed(tensor)
    return tensor


def set_item(tensor, index, value):
    """``tensor[index] = value`` (a tensor, array or number); bumps the version."""
    _check_in_place(tensor, value, "setitem")
    if isinstance(value, _Tensor):
        if value.backend is not tensor.backend:
            raise DeviceMismatchError(f"setitem: value on {value.device}, tensor on {tensor.device}")
        value = value.data
    elif not _is_python_number(value):
        value = tensor.backend.asarray(value if tensor.device == "cpu" else np.asarray(value))
    data = autograd.recorded(tensor.data)
    try:
        data[_index_data(index, tensor)] = value
    except (IndexError, ValueError, TypeError) as error:
        kind = IndexError if isinstance(error, IndexError) else TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"setitem on a tensor of shape {tensor.shape}: {error}") from None
    autograd.mark_changed(tensor)
