"""What the Tensor API does with its arguments: indices made arrays on the tensor's device, shapes checked,
and in-place updates (``+=``, ``x[i] = v``) that bump the version. An op's operands are brought to one
device and dtype by ``function.as_tensor_like``."""
from __future__ import annotations

import numpy as np

from . import autograd
from .backend import is_host_array
from .function import DeviceMismatchError, TensorBase, _is_python_number, as_tensor_like  # noqa: F401


def _index_data(index, tensor):
    """Tensors used as indices become arrays on the indexed tensor's device."""
    items = index if isinstance(index, tuple) else (index,)
    converted = []
    for item in items:
        if isinstance(item, TensorBase):
            item = item.data
        elif isinstance(item, float):
            raise IndexError(f"indexing a tensor of shape {tensor.shape}: float {item} is not a valid index")
        elif isinstance(item, list):
            item = np.asarray(item)
        if is_host_array(item) and tensor.device != "cpu":
            item = tensor.backend.asarray(item)
        converted.append(item)
    return tuple(converted) if isinstance(index, tuple) else converted[0]


def _shape(shape, op="shape"):
    """A shape given as integers or one tuple/list of them; anything else is refused, not truncated."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for n in shape:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) and not (isinstance(n, TensorBase) and n.ndim == 0
                                                                                and n.dtype.kind in "iu"):
            raise TypeError(f"{op}: sizes must be integers, got {tuple(shape)!r}")
    return tuple(int(n) for n in shape)



def _check_in_place(tensor, other, op):
    if autograd.is_grad_enabled() and (tensor.requires_grad or getattr(other, "requires_grad", False)):
        raise RuntimeError(f"{op}: in-place change of a tensor that requires grad while recording a graph; "
                           "wrap it in gpugrad.no_grad() (or use an out-of-place op)")


def _written(tensor):
    """The array an in-place change writes: inside a captured step, the capture's view of it (and the capture
    guards on the tensor, as on one an op read)."""
    capture = autograd.features.capture
    if capture is None:
        return tensor.data
    capture.read((tensor,))
    return autograd.recorded(tensor.data)


def update_in_place(tensor, other, ufunc_name, op):
    """``tensor <op>= other`` through the ufunc, casting as numpy's "same_kind"; bumps the version."""
    _check_in_place(tensor, other, op)
    value = as_tensor_like((tensor, other), op)[1].data
    data = _written(tensor)
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
    if isinstance(value, TensorBase):
        if value.backend is not tensor.backend:
            raise DeviceMismatchError(f"setitem: value on {value.device}, tensor on {tensor.device}")
        value = value.data
    elif not _is_python_number(value):
        value = tensor.backend.asarray(value if tensor.device == "cpu" else np.asarray(value))
    data = _written(tensor)
    try:
        data[_index_data(index, tensor)] = value
    except (IndexError, ValueError, TypeError) as error:
        kind = IndexError if isinstance(error, IndexError) else TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"setitem on a tensor of shape {tensor.shape}: {error}") from None
    autograd.mark_changed(tensor)
