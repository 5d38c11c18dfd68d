"""GPU utilities: availability, device count, synchronize, and memory statistics (CuPy's pool)."""
from __future__ import annotations

from ..backend import CudaUnavailableError, get_backend


def unavailable_reason() -> str | None:
    """Why device "cuda" cannot be used (CuPy missing, no visible GPU, ...), or None when it can."""
    try:
        get_backend("cuda")
        return None
    except CudaUnavailableError as error:
        return str(error)
    except Exception as error:  # a broken driver or CUDA install
        return f"{type(error).__name__}: {error}"


def is_available() -> bool:
    try:
        get_backend("cuda")
        return True
    except CudaUnavailableError:
        return False


def device_count() -> int:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


def synchronize(device="cuda") -> None:
    get_backend(device).synchronize()


def _pool(device):
    backend = get_backend(device)  # CudaUnavailableError without CuPy or a GPU
    import cupy
    return cupy.get_default_memory_pool(), backend.index


def memory_allocated(device="cuda") -> int:
    """Bytes held by tensors (CuPy's pool, used blocks), including the pools of captured steps (gpugrad.compile)."""
    pool, index = _pool(device)
    from ..capture.cuda import pool_bytes
    return int(pool.used_bytes()) + pool_bytes(index)


def max_memory_allocated(device="cuda") -> int:
    """The peak of ``memory_allocated`` since start or the last ``reset_peak_memory_stats``."""
    _, index = _pool(device)
    from ..backend.cupy_backend import peak_bytes
    return max(int(peak_bytes(index)), memory_allocated(device))


def reset_peak_memory_stats(device="cuda") -> None:
    _, index = _pool(device)
    from ..backend.cupy_backend import reset_peak
    reset_peak(index)


def empty_cache(device="cuda") -> None:
    """Release the pool's cached free blocks back to the driver."""
    pool, _ = _pool(device)
    pool.free_all_blocks()
