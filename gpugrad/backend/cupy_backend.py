"""The GPU device object: CuPy arrays, cuBLAS GEMMs, the seeded generator, memory statistics, and
``kernels`` (``gpugrad.cuda.kernels``: the fused-kernel launches the ops call where they apply).
"""
from __future__ import annotations

import cupy
import numpy as np
from cupy.cuda import cublas

from ..autograd import check_host_read
from ..dtypes import BFLOAT16, LOW_FLOATS
from ..cuda import kernels as kernel_launches
from .device import Backend


class GPUOutOfMemoryError(MemoryError):
    """A GPU allocation failed even after the memory pool's free blocks were released."""


# cuBLAS: (cudaDataType, cublasComputeType_t, scalar type) per dtype; host scalars for alpha and beta.
_GEMM_TYPES = {np.dtype(np.float16): (cupy.cuda.runtime.CUDA_R_16F, cublas.CUBLAS_COMPUTE_32F, np.float32),
               np.dtype(np.float32): (cupy.cuda.runtime.CUDA_R_32F, cublas.CUBLAS_COMPUTE_32F, np.float32),
               **({BFLOAT16: (cupy.cuda.runtime.CUDA_R_16BF, cublas.CUBLAS_COMPUTE_32F, np.float32)}
                  if BFLOAT16 is not None else {}),
               np.dtype(np.float64): (cupy.cuda.runtime.CUDA_R_64F, cublas.CUBLAS_COMPUTE_64F, np.float64)}
_SCALARS = {np.float32: (np.ones(1, np.float32), np.zeros(1, np.float32)),
            np.float64: (np.ones(1, np.float64), np.zeros(1, np.float64))}


def _gemm_operand(m):
    """(operation, leading dimension) to read row-major ``m`` as cuBLAS's column-major transpose."""
    if m.flags.c_contiguous:
        return cublas.CUBLAS_OP_N, m.shape[1]
    if m.flags.f_contiguous:
        return cublas.CUBLAS_OP_T, m.shape[0]
    return None


class CupyBackend(Backend):
    kind = "cuda"
    xp = cupy
    array_type = cupy.ndarray
    kernels = kernel_launches

    def __init__(self, index: int):
        self.index = index
        self.device = cupy.cuda.Device(index)
        with self.device:
            self.cublas_handle = cupy.cuda.device.get_cublas_handle()
        _install_allocator()
        super().__init__()
        self.apply_matmul_precision()

    # -- arrays, devices, random numbers ------------------------------------------------------
    def device_context(self):
        return self.device

    def asarray(self, data, dtype=None):
        with self.device:
            return cupy.asarray(data, dtype=dtype)

    def to_numpy(self, array):
        check_host_read("a host read of a tensor (.item(), .numpy(), float(), bool(), print)")
        return cupy.asnumpy(array) if not isinstance(array, np.ndarray) else array

    def synchronize(self):
        self.device.synchronize()

    def matmul(self, a, b):
        """a @ b through cuBLAS. 2-D operands (plain or transposed views) call cublasGemmEx directly,
        which costs the host far less than ``cupy.matmul``; the rest goes through ``cupy.matmul``.
        float16 accumulates in float32."""
        types = _GEMM_TYPES.get(a.dtype)
        if a.ndim != 2 or b.ndim != 2 or types is None or a.dtype != b.dtype or 0 in a.shape or 0 in b.shape:
            return cupy.matmul(a, b)
        op_b, op_a = _gemm_operand(b), _gemm_operand(a)
        if op_a is None or op_b is None:
            return cupy.matmul(a, b)
        m, k = a.shape
        if b.shape[0] != k:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned")
        n = b.shape[1]
        out = cupy.empty((m, n), dtype=a.dtype)
        data_type, compute_type, scalar_type = types
        if a.dtype == np.float32 and self.matmul_precision == "high":
            compute_type = cublas.CUBLAS_COMPUTE_32F_FAST_TF32
        one, zero = _SCALARS[scalar_type]
        handle = self.cublas_handle  # CuPy's, or a captured step's own (gpugrad.capture.cuda)
        cublas.setStream(handle, cupy.cuda.get_current_stream().ptr)
        cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)  # alpha and beta live on the host
        # NOTE: row-major C = A B is column-major C^T = B^T A^T: pass B first, and swap m and n.
        cublas.gemmEx(handle, op_b[0], op_a[0], n, m, k, one.ctypes.data, b.data.ptr, data_type, op_b[1],
                      a.data.ptr, data_type, op_a[1], zero.ctypes.data, out.data.ptr, data_type, n, compute_type, -1)
        return out

    def seed(self, seed):
        with self.device:
            self.rng = cupy.random.RandomState(seed)
            # NOTE: the fused dropout's (seed, offset), written in place: captured steps hold its address
            words = np.array([(seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2 ** 64, 0], dtype=np.uint64)
            if getattr(self, "dropout_state", None) is None:
                self.dropout_state = cupy.asarray(words)
            else:
                self.dropout_state.set(words)

    def randn(self, shape, dtype):
        with self.device:
            work = np.float32 if dtype in LOW_FLOATS else dtype
            return self.rng.standard_normal(shape, dtype=work).astype(dtype, copy=False)

    def rand(self, shape, dtype):
        with self.device:
            work = np.float32 if dtype in LOW_FLOATS else dtype
            return self.rng.random_sample(shape, dtype=work).astype(dtype, copy=False)

    def permutation(self, n):
        with self.device:
            return self.rng.permutation(n)

    def apply_matmul_precision(self):
        from cupy._core import _routines_linalg as linalg
        tf32 = self.matmul_precision == "high"
        # NOTE: for cupy.matmul (batched products); the direct GEMM path reads matmul_precision itself.
        compute_type = getattr(linalg, "COMPUTE_TYPE_TF32" if tf32 else "COMPUTE_TYPE_DEFAULT")
        with self.device:
            linalg.set_compute_type(np.float32, compute_type)


# -- memory: a pool allocator that releases cached blocks and retries once before failing --------
_peak = {}
_installed = False


def _install_allocator():
    global _installed
    if _installed:
        return
    pool = cupy.get_default_memory_pool()

    pool_malloc, used_bytes = pool.malloc, pool.used_bytes

    def malloc(size):
        try:
            memory = pool_malloc(size)
        except cupy.cuda.memory.OutOfMemoryError:
            memory = _retry_after_release(pool, size)
        used = used_bytes()
        if used > _peak.get(memory.device_id, 0):
            _peak[memory.device_id] = used
        return memory

    cupy.cuda.set_allocator(malloc)
    _installed = True


def _retry_after_release(pool, size):
    pool.free_all_blocks()
    try:
        return pool.malloc(size)
    except cupy.cuda.memory.OutOfMemoryError:
        device = cupy.cuda.runtime.getDevice()
        free, total = cupy.cuda.runtime.memGetInfo()
        raise GPUOutOfMemoryError(
            f"cuda:{device}: out of memory allocating {_human(size)}; gpugrad holds "
            f"{_human(pool.used_bytes())} in tensors and {_human(pool.total_bytes() - pool.used_bytes())} "
            f"cached (already released and retried); the device has {_human(free)} free of {_human(total)}"
        ) from None


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


def peak_bytes(device: int) -> int:
    return _peak.get(device, 0)


def reset_peak(device: int) -> None:
    _peak[device] = cupy.get_default_memory_pool().used_bytes()
