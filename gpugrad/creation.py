"""Creating tensors: ``tensor``, ``zeros``, ``ones``, ``full``, ``eye``, ``arange``, ``randn``,
``rand``, and ``manual_seed`` for every device's generator."""
from __future__ import annotations

import numpy as np

from .backend import backend_of, get_backend, is_cupy_array, is_host_array, seed_all
from .dtypes import check_numeric
from .seam import refuse_in_capture
from .tensor import Tensor, _shape


def _default_dtype(data, dtype):
    if dtype is not None:
        return np.dtype(dtype)
    if isinstance(data, (np.ndarray, np.generic)) or is_cupy_array(data):
        return None  # arrays keep their dtype
    try:
        probe = np.asarray(data)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"tensor: cannot make a tensor from ragged nested sequences ({error})") from None
    check_numeric(probe, "tensor")
    if probe.dtype == np.bool_:
        return None
    if probe.dtype.kind in "iuf":
        return np.dtype(np.float32)  # Python numbers and lists are float32
    return None


def tensor(data, dtype=None, device=None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """Make a tensor from Python numbers, lists, numpy or cupy arrays, or another tensor.

    Python numbers and lists become float32; numpy arrays keep their dtype; ``device`` is "cpu",
    "cuda" or "cuda:N" (default: where the data already is, else the CPU). The data is copied.
    """
    if isinstance(data, Tensor):
        data = data.data
    if data is None or isinstance(data, (str, bytes, dict, set)):
        raise TypeError(f"tensor: cannot make a tensor from {type(data).__name__} {data!r:.40}; "
                        "expected numbers, bools, nested lists of them, or an array")
    backend = get_backend(device) if device is not None else (backend_of(data) if is_cupy_array(data) else get_backend("cpu"))
    dtype = _default_dtype(data, dtype)
    if is_cupy_array(data) and backend.kind == "cpu":
        array = np.asarray(data.get(), dtype=dtype)
    elif backend.kind == "cpu":
        array = np.array(data, dtype=dtype, copy=True)
    else:
        array = backend.asarray(np.asarray(data) if not is_cupy_array(data) else data, dtype=dtype)
        if array is data:
            array = array.copy()
    return Tensor(array, requires_grad=requires_grad, name=name)


def _creator(fill):
    def make(*shape, dtype=np.float32, device=None, requires_grad=False):
        backend = get_backend(device)
        shape = _shape(shape, "shape")
        if any(n < 0 for n in shape):
            raise ValueError(f"negative sizes in shape {shape}")
        return Tensor(fill(backend, shape, np.dtype(dtype)), requires_grad=requires_grad)
    return make


zeros = _creator(lambda b, shape, dtype: b.xp.zeros(shape, dtype=dtype))
ones = _creator(lambda b, shape, dtype: b.xp.ones(shape, dtype=dtype))
randn = _creator(lambda b, shape, dtype: b.randn(shape, dtype))
rand = _creator(lambda b, shape, dtype: b.rand(shape, dtype))
zeros.__doc__ = "zeros(*shape, dtype=float32, device=None, requires_grad=False)"
ones.__doc__ = "ones(*shape, dtype=float32, device=None, requires_grad=False)"
randn.__doc__ = "Standard normal samples from the device's seeded generator (see manual_seed)."
rand.__doc__ = "Uniform [0, 1) samples from the device's seeded generator (see manual_seed)."


def full(shape, fill_value, dtype=np.float32, device=None, requires_grad=False) -> Tensor:
    backend = get_backend(device)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(backend.xp.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def eye(n, m=None, dtype=np.float32, device=None, requires_grad=False) -> Tensor:
    return Tensor(get_backend(device).xp.eye(n, m, dtype=dtype), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        dtype = np.int64 if all(isinstance(v, int) for v in (start, stop, step)) else np.float32
    return Tensor(get_backend(device).xp.arange(start, stop, step, dtype=dtype), requires_grad=requires_grad)


def manual_seed(seed: int) -> None:
    """Seed the generators of every device (those made later start from the same seed)."""
    refuse_in_capture("manual_seed()", "seed before compiling the step, or outside it")
    seed_all(seed)


def _like(fill):
    def make(other, dtype=None, device=None, requires_grad=False):
        other = other if isinstance(other, Tensor) else Tensor(np.asarray(other))
        backend = get_backend(device) if device is not None else other.backend
        shape, dtype = other.shape, np.dtype(dtype) if dtype is not None else other.dtype
        with backend.device_context():
            return Tensor(fill(backend, shape, dtype), requires_grad=requires_grad)
    return make


zeros_like = _like(lambda b, shape, dtype: b.xp.zeros(shape, dtype=dtype))
ones_like = _like(lambda b, shape, dtype: b.xp.ones(shape, dtype=dtype))
empty_like = _like(lambda b, shape, dtype: b.xp.empty(shape, dtype=dtype))
rand_like = _like(lambda b, shape, dtype: b.rand(shape, dtype))
randn_like = _like(lambda b, shape, dtype: b.randn(shape, dtype))
zeros_like.__doc__ = "zeros_like(t, dtype=None, device=None, requires_grad=False): t's shape, dtype and device."


def full_like(other, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    made = empty_like(other, dtype=dtype, device=device)
    made.data[...] = fill_value
    return made.requires_grad_(requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor sharing ``array``'s memory (changes to one show in the other), as torch.from_numpy."""
    if not is_host_array(array):
        raise TypeError(f"from_numpy: expected a numpy array, got {type(array).__name__}")
    return Tensor(array)


def from_dlpack(obj) -> Tensor:
    """A tensor sharing the memory of any DLPack producer (PyTorch, CuPy, JAX, numpy): zero copy.
    CPU producers become CPU tensors, CUDA producers CUDA tensors (which need CuPy)."""
    if isinstance(obj, Tensor):
        return obj.detach()
    if not hasattr(obj, "__dlpack_device__"):
        raise TypeError(f"from_dlpack: {type(obj).__name__} is not a DLPack producer (no __dlpack_device__)")
    device_type, index = obj.__dlpack_device__()
    if int(device_type) == 1:  # kDLCPU
        return Tensor(np.from_dlpack(obj))
    if int(device_type) in (2, 13):  # kDLCUDA, kDLCUDAManaged
        backend = get_backend(f"cuda:{index}")
        with backend.device_context():
            return Tensor(backend.xp.from_dlpack(obj))
    raise ValueError(f"from_dlpack: DLPack device type {device_type} is neither the CPU (1) nor CUDA (2)")


def randint(low, high=None, size=(), dtype=np.int64, device=None):
    """Integers uniform in [low, high) (or [0, low)) from the device's seeded generator."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: needs low < high, got {low} and {high}")
    backend = get_backend(device)
    size = (size,) if isinstance(size, int) else tuple(size)
    draws = backend.xp.floor(backend.rand(size, np.float64) * (high - low)) + low
    return Tensor(draws.astype(dtype))
