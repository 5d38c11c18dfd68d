"""The GPU device object: CuPy arrays, cuBLAS GEMMs, the seeded generator, memory statistics, and
``kernels`` (``gpugrad.cuda.kernels``: the fused-kernel launches the ops call where they apply).
"""
from __future__ import annotations

import contextlib

import cupy
import numpy as np
from cupy.cuda import cublas

from ..seam import check_host_read
from ..dtypes import LOW_FLOATS, known_bfloat16

try:  # CuPy's bfloat16 arrays are ml_dtypes' (an extra of the CUDA installs)
    import ml_dtypes  # noqa: F401
except ImportError:
    pass
BFLOAT16 = known_bfloat16()
from ..cuda import kernels as kernel_launches
from .device import Backend


class GPUOutOfMemoryError(MemoryError):
    """A GPU allocation failed even after the memory pool's free blocks were released."""


# cuBLAS: (cudaDataType, cublasComputeType_t) per dtype; host scalars for alpha and beta, float64 for the 64-bit
# compute type, else float32.
_GEMM_TYPES = {np.dtype(np.float16): (cupy.cuda.runtime.CUDA_R_16F, cublas.CUBLAS_COMPUTE_32F),
               np.dtype(np.float32): (cupy.cuda.runtime.CUDA_R_32F, cublas.CUBLAS_COMPUTE_32F),
               **({BFLOAT16: (cupy.cuda.runtime.CUDA_R_16BF, cublas.CUBLAS_COMPUTE_32F)} if BFLOAT16 is not None else {}),
               np.dtype(np.float64): (cupy.cuda.runtime.CUDA_R_64F, cublas.CUBLAS_COMPUTE_64F)}
GEMM_ITEMSIZE = {types[0]: dtype.itemsize for dtype, types in _GEMM_TYPES.items()}  # cudaDataType -> bytes
_SCALARS = {np.float32: (np.ones(1, np.float32), np.zeros(1, np.float32)),
            np.float64: (np.ones(1, np.float64), np.zeros(1, np.float64))}


def _matrices(m):
    """(operation, leading dimension, batch stride) that read the matrices in the last two axes of row-major
    ``m`` as cuBLAS's column-major transposes, every batch index one stride (in elements) further; None
    where the layout does not fit (the caller copies)."""
    item, (rows, cols), (row_step, col_step) = m.itemsize, m.shape[-2:], m.strides[-2:]
    if (col_step == item or cols == 1) and (row_step == cols * item or rows == 1):
        operation, leading = cublas.CUBLAS_OP_N, cols  # C order: cuBLAS sees the transpose
    elif (row_step == item or rows == 1) and (col_step == rows * item or cols == 1):
        operation, leading = cublas.CUBLAS_OP_T, rows  # a transposed view of C order: cuBLAS sees the matrix
    else:
        return None
    stride = span = None
    for n, step in zip(reversed(m.shape[:-2]), reversed(m.strides[:-2])):  # the batch axes, innermost first
        if n == 1:
            continue
        if step % item or (span is not None and step != span):
            return None  # not one stride over the whole batch
        stride = step // item if stride is None else stride
        span = step * n
    return operation, max(leading, 1), stride or 0


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
        self.blas = cublas  # CuPy's bindings; a captured step swaps in its own handle and gpugrad.cuda.cublas
        self.gemm_log = None  # a set while recording_gemms() collects the signatures of the GEMMs run
        _install_allocator()
        super().__init__()

    # -- arrays, devices, random numbers ------------------------------------------------------
    def device_context(self):
        return self.device

    @contextlib.contextmanager
    def recording_gemms(self):
        """Collects the signatures (``gemm`` arguments without pointers) of the GEMMs run inside: a captured step
        runs each once on its own cuBLAS handle before the capture begins (``gpugrad.capture.cuda``)."""
        outer, self.gemm_log = self.gemm_log, set()
        try:
            yield self.gemm_log
        finally:
            self.gemm_log = outer

    def asarray(self, data, dtype=None):
        with self.device:
            return cupy.asarray(data, dtype=dtype)

    def constant(self, value, dtype):
        # NOTE: filled on the device (the number is a kernel argument), not copied from the host: inside a
        # captured step a host-to-device copy would be a graph node reading a staging buffer CuPy reuses
        with self.device:
            if dtype == BFLOAT16:  # from float64: one rounding, as numpy's (ml_dtypes') conversion
                return cupy.full((), value, dtype=np.float64).astype(dtype)
            return cupy.full((), value, dtype=dtype)

    def to_numpy(self, array):
        check_host_read("a host read of a tensor (.item(), .numpy(), float(), bool(), print)")
        return cupy.asnumpy(array)  # a numpy array comes back as it is

    def synchronize(self):
        self.device.synchronize()

    def matmul(self, a, b):
        """a @ b (numpy's rules: vectors, batches, broadcasting) through cuBLAS: one cublasGemmEx, or one
        cublasGemmStridedBatchedEx for a batch, with the compute type this device's precision asks for (float16
        and bfloat16 accumulate in float32; float32 in TF32 under ``set_matmul_precision("high")``). Operands in
        C order or transposed views are read in place; other layouts and partly broadcast batches are copied."""
        types = _GEMM_TYPES.get(a.dtype)
        if types is None or a.dtype != b.dtype or not a.ndim or not b.ndim:
            return cupy.matmul(a, b)  # integers, and the errors of mixed dtypes and 0-d operands
        a2 = a[None, :] if a.ndim == 1 else a  # vectors as matrices, as numpy does; their axis goes again below
        b2 = b[:, None] if b.ndim == 1 else b
        (m, k), n = a2.shape[-2:], b2.shape[-1]
        if b2.shape[-2] != k:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned")
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        with self.device:
            out = cupy.empty(batch + (m, n), dtype=a.dtype)
            if not k:
                out.fill(0)
            elif out.size:
                self._gemm(self._operand(a2, batch), self._operand(b2, batch), out, types)
        if a.ndim == 1:
            out = out[..., 0, :]
        return out[..., 0] if b.ndim == 1 else out

    @staticmethod
    def _operand(x, batch):
        """``x`` with its batch broadcast to ``batch`` in a layout cuBLAS reads: (array, layout)."""
        own = x.shape[:-2]
        if any(n != 1 for n in own) and (len(own) != len(batch) or own != batch):
            x = cupy.broadcast_to(x, batch + x.shape[-2:])  # partly broadcast: a view with zero strides
        layout = _matrices(x)
        if layout is None:
            x = cupy.ascontiguousarray(x)
            layout = _matrices(x)
        return x, layout

    def _gemm(self, a, b, out, types):
        (a, (op_a, ld_a, stride_a)), (b, (op_b, ld_b, stride_b)) = a, b
        data_type, compute_type = types
        if out.dtype == np.float32 and self.matmul_precision == "high":
            compute_type = cublas.CUBLAS_COMPUTE_32F_FAST_TF32
        (m, n), count = out.shape[-2:], out.size // (out.shape[-2] * out.shape[-1])
        # NOTE: row-major C = A B is column-major C^T = B^T A^T: pass B first, and swap m and n.
        shape = (op_b, op_a, n, m, a.shape[-1], data_type, ld_b, ld_a, stride_b, stride_a, count, compute_type)
        if self.gemm_log is not None:
            self.gemm_log.add(shape)
        gemm(self.blas, self.cublas_handle, shape, b.data.ptr, a.data.ptr, out.data.ptr)

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


def gemm(blas, handle, shape, b, a, out):
    """One cuBLAS GEMM of ``shape`` (``CupyBackend._gemm``'s signature) on device pointers, through ``blas``: CuPy's
    bindings (which bind ``handle`` to the current stream at each call) or ``gpugrad.cuda.cublas`` (a captured
    step's handle, bound to its stream once)."""
    op_b, op_a, n, m, k, data_type, ld_b, ld_a, stride_b, stride_a, count, compute_type = shape
    one, zero = _SCALARS[np.float64 if compute_type == cublas.CUBLAS_COMPUTE_64F else np.float32]
    if blas is cublas:  # CuPy's handle, which CuPy's own routines may leave in device pointer mode
        cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)  # alpha and beta live on the host
    if count == 1:
        blas.gemmEx(handle, op_b, op_a, n, m, k, one.ctypes.data, b, data_type, ld_b, a, data_type, ld_a,
                    zero.ctypes.data, out, data_type, n, compute_type, -1)
    else:
        blas.gemmStridedBatchedEx(handle, op_b, op_a, n, m, k, one.ctypes.data, b, data_type, ld_b, stride_b, a,
                                  data_type, ld_a, stride_a, zero.ctypes.data, out, data_type, n, m * n, count,
                                  compute_type, -1)


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
