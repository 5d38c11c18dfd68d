"""Device objects: one per device, owning the array module, the RNG, transfers, memory and GEMM.

``get_backend("cpu")`` is numpy's; ``get_backend("cuda:N")`` CuPy's on GPU N. The device of
an array is found from the array's type, so nothing here imports cupy until a GPU is asked for.
"""
from __future__ import annotations

import importlib

import numpy as np

from .device import Backend

__all__ = ["Backend", "CudaUnavailableError", "get_backend", "backend_of", "parse_device",
           "is_cupy_array", "all_backends"]


class CudaUnavailableError(RuntimeError):
    """``cuda`` was asked for but cannot be used (CuPy missing, or no visible GPU)."""


_CPU = Backend()
_CUDA: dict[int, Backend] = {}


def parse_device(device) -> tuple[str, int]:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` (or a Backend) -> (kind, index)."""
    if device is None:
        return ("cpu", 0)
    if isinstance(device, Backend):
        return (device.kind, device.index)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu', 'cuda' or 'cuda:0', got {device!r}")
    text = device.strip().lower()
    if text == "cpu":
        return ("cpu", 0)
    if text == "cuda" or text == "gpu":
        return ("cuda", 0)
    if text.startswith("cuda:"):
        index = text[5:]
        if index.isdigit():
            return ("cuda", int(index))
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def get_backend(device=None) -> Backend:
    if isinstance(device, Backend):
        return device
    kind, index = parse_device(device)
    if kind == "cpu":
        return _CPU
    backend = _CUDA.get(index)
    if backend is None:
        backend = _CUDA[index] = _make_cuda_backend(index)
    return backend


def _make_cuda_backend(index: int) -> Backend:
    try:
        importlib.import_module("cupy")  # imported only when a GPU is asked for
    except ImportError as error:
        raise CudaUnavailableError(
            f"device 'cuda:{index}' needs CuPy, which is not installed ({error}). Install the build "
            "for your CUDA major: pip install 'gpugrad[cuda12]' or pip install 'gpugrad[cuda13]'"
        ) from None
    count = _cuda_device_count()
    if count == 0:
        raise CudaUnavailableError(
            f"device 'cuda:{index}' asked for, CuPy is installed but no CUDA GPU is visible "
            "(check the NVIDIA driver, nvidia-smi and CUDA_VISIBLE_DEVICES); use device='cpu'"
        )
    if index >= count:
        raise CudaUnavailableError(
            f"device 'cuda:{index}' asked for but only {count} CUDA GPU(s) are visible "
            f"(valid: cuda:0 .. cuda:{count - 1})"
        )
    from .cupy_backend import CupyBackend
    return CupyBackend(index)


def _cuda_device_count() -> int:
    import cupy
    try:
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # cudaErrorNoDevice, driver missing, ...
        return 0


def is_cupy_array(array) -> bool:
    # NOTE: checked by module name so that telling arrays apart never imports cupy.
    return type(array).__module__.startswith("cupy")


def is_host_array(array) -> bool:
    """A numpy array (host memory), not a device array. NOTE: not ``isinstance(array, np.ndarray)`` alone: the tests'
    CuPy stand-in makes its device arrays numpy subclasses, where real CuPy's are not, and the two would take
    different paths."""
    return isinstance(array, np.ndarray) and not is_cupy_array(array)


def backend_of(array) -> Backend:
    if type(array) is np.ndarray:
        return _CPU
    if is_cupy_array(array):
        device_id = array.data.device_id
        backend = _CUDA.get(device_id)
        return backend if backend is not None else get_backend(f"cuda:{device_id}")
    if isinstance(array, (np.ndarray, np.generic)):
        return _CPU
    raise TypeError(f"expected a numpy or cupy array, got {type(array).__name__}")


def all_backends() -> list[Backend]:
    return [_CPU, *_CUDA.values()]


def seed_all(seed: int) -> None:
    """Seed the generators of every device made so far, and of those made later."""
    Backend._seed = int(seed)
    for backend in all_backends():
        backend.seed(int(seed))
