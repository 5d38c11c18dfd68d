"""The GPU backend: CuPy arrays, cuBLAS GEMMs, and gpugrad's fused CUDA kernels (``kernels/*.cu``).

Each fused operation takes the kernel when the arrays are contiguous and of a dtype the kernels
are built for (float16, float32, float64), and the generic ``xp`` path otherwise. Kernels are
compiled lazily, once per process (CuPy also caches the binaries on disk).
"""
from __future__ import annotations

import math

import cupy
import numpy as np
from cupy.cuda import cublas

from .generic import Backend

ACT_CODES = {None: 0, "relu": 1, "sigmoid": 2, "tanh": 3, "leaky_relu": 4, "elu": 5}
KERNEL_DTYPES = {np.dtype(np.float16): "__half", np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "elu")
_KERNELS = {
    "activation": [f"{a}_{d}<{t}>" for a in _ACTIVATIONS for d in ("fwd", "bwd") for t in KERNEL_DTYPES.values()],
    "bias_act": [f"{k}<{t}>" for k in ("bias_act_fwd", "bias_act_bwd", "bias_act_bwd_small", "column_sum")
                 for t in KERNEL_DTYPES.values()],
    "softmax_xent": [f"softmax_xent_fwd<{t}, {l}>" for t in KERNEL_DTYPES.values() for l in ("long long", "int")],
    "optim": [f"{k}<{t}>" for k in ("sgd_step", "adam_step") for t in ("float", "double")],
}
_MODULES: dict = {}
BLOCK = 256
SMALL_EPILOGUE = 1 << 20  # elements up to which the bias gradient is summed in the same launch


class GPUOutOfMemoryError(MemoryError):
    """A GPU allocation failed even after the memory pool's free blocks were released."""


_HALF = {"available": True}


def _cuda_include_dirs() -> tuple:
    """Folders holding cuda_fp16.h: the toolkit's, or the NVIDIA wheels' (CuPy may not pass them to NVRTC)."""
    import os
    import sys
    from pathlib import Path
    candidates = [Path(os.environ[v]) / "include" for v in ("CUDA_PATH", "CUDA_HOME") if v in os.environ]
    candidates.append(Path("/usr/local/cuda/include"))
    for site in sys.path:
        for sub in ("nvidia/cu13/include", "nvidia/cuda_runtime/include", "nvidia/cu12/include"):
            candidates.append(Path(site) / sub)
    found = []
    for folder in candidates:
        if (folder / "cuda_fp16.h").is_file() and str(folder) not in found:
            found.append(str(folder))
    return tuple(f"-I{folder}" for folder in found[:2])


def _compile(module_name: str, half: bool):
    from . import kernel_dir
    folder = kernel_dir()
    source = (folder / f"{module_name}.cu").read_text()
    names = [n for n in _KERNELS[module_name] if half or "__half" not in n]
    # NOTE: -fmad=false keeps a*b+c rounded as numpy rounds it, so CPU-GPU parity holds to the ulp.
    options = ("-std=c++17", "-fmad=false", f"-I{folder}") + (_cuda_include_dirs() if half else ("-DGPUGRAD_NO_HALF",))
    module = cupy.RawModule(code=source, options=options, name_expressions=names)
    module.compile()
    return module


_FUNCTIONS: dict = {}


def load_kernel(module_name: str, expression: str):
    """The compiled kernel ``expression`` (e.g. ``"sigmoid_fwd<float>"``) of ``kernels/<module_name>.cu``."""
    function = _FUNCTIONS.get((module_name, expression, cupy.cuda.runtime.getDevice()))
    if function is not None:
        return function
    module = _MODULES.get(module_name)
    if module is None:
        try:
            module = _compile(module_name, _HALF["available"])
        except cupy.cuda.compiler.CompileException as error:
            if not _HALF["available"] or "fp16" not in str(error):
                raise
            # NVRTC could not find cuda_fp16.h: build without half kernels, and say so once.
            import warnings
            warnings.warn(f"gpugrad: CUDA half-precision headers not found ({str(error).splitlines()[0]}); "
                          "float16 uses the generic CuPy path", RuntimeWarning)
            _HALF["available"] = False
            module = _compile(module_name, False)
        _MODULES[module_name] = module
    function = _FUNCTIONS[(module_name, expression, cupy.cuda.runtime.getDevice())] = module.get_function(expression)
    return function


def _fits(*arrays) -> bool:
    """Arrays the kernels take: one dtype they are built for, C-contiguous."""
    dtype = arrays[0].dtype
    if dtype not in KERNEL_DTYPES or (dtype == np.float16 and not _HALF["available"]):
        return False
    for a in arrays:
        if a.dtype != dtype or not a.flags.c_contiguous:
            return False
    return True


# cuBLAS: (cudaDataType, cublasComputeType_t, scalar type) per dtype; host scalars for alpha and beta.
_GEMM_TYPES = {np.dtype(np.float16): (cupy.cuda.runtime.CUDA_R_16F, cublas.CUBLAS_COMPUTE_32F, np.float32),
               np.dtype(np.float32): (cupy.cuda.runtime.CUDA_R_32F, cublas.CUBLAS_COMPUTE_32F, np.float32),
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
    _blocks_done = None

    def __init__(self, index: int):
        self.index = index
        self.device = cupy.cuda.Device(index)
        with self.device:
            self.sm_count = self.device.attributes["MultiProcessorCount"]
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
        handle = self.cublas_handle
        cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)  # alpha and beta live on the host
        # NOTE: row-major C = A B is column-major C^T = B^T A^T: pass B first, and swap m and n.
        cublas.gemmEx(handle, op_b[0], op_a[0], n, m, k, one.ctypes.data, b.data.ptr, data_type, op_b[1],
                      a.data.ptr, data_type, op_a[1], zero.ctypes.data, out.data.ptr, data_type, n, compute_type, -1)
        return out

    def seed(self, seed):
        with self.device:
            self.rng = cupy.random.RandomState(seed)

    def randn(self, shape, dtype):
        with self.device:
            work = np.float32 if dtype == np.float16 else dtype
            return self.rng.standard_normal(shape, dtype=work).astype(dtype, copy=False)

    def rand(self, shape, dtype):
        with self.device:
            work = np.float32 if dtype == np.float16 else dtype
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

    # -- launches -----------------------------------------------------------------------------
    def _grid(self, n: int, itemsize: int = 1) -> int:
        """Blocks for a grid-stride loop over n elements, 64 bytes (four 16-byte packs) per thread per trip."""
        per_thread = max(1, 64 // itemsize) if itemsize > 1 else 1
        return max(1, min(math.ceil(n / (BLOCK * per_thread)), self.sm_count * 32))

    def _act_fwd(self, name, x, out, **params):
        """The kernel <name>_fwd; the generic formula where the kernel does not apply. ``params``
        is the activation's one parameter (negative_slope, alpha) or nothing."""
        if not _fits(x) or (out is not None and not _fits(x, out)) or x.size == 0:
            return getattr(Backend, name + "_fwd")(self, x, out=out, **params)
        p = next(iter(params.values()), 0.0)
        y = cupy.empty_like(x) if out is None else out
        kernel = load_kernel("activation", f"{name}_fwd<{KERNEL_DTYPES[x.dtype]}>")
        kernel((self._grid(x.size, x.itemsize),), (BLOCK,), (x, y, np.int64(x.size), np.float64(p)))
        return y

    def _act_bwd(self, name, y, grad_output, **params):
        if not _fits(y, grad_output) or y.size == 0:
            return getattr(Backend, name + "_bwd")(self, y, grad_output, **params)
        p = next(iter(params.values()), 0.0)
        gx = cupy.empty_like(y)
        kernel = load_kernel("activation", f"{name}_bwd<{KERNEL_DTYPES[y.dtype]}>")
        kernel((self._grid(y.size, y.itemsize),), (BLOCK,), (y, grad_output, gx, np.int64(y.size), np.float64(p)))
        return gx

    def sigmoid_fwd(self, x, out=None):
        return self._act_fwd("sigmoid", x, out)

    def sigmoid_bwd(self, y, grad_output):
        return self._act_bwd("sigmoid", y, grad_output)

    def relu_fwd(self, x, out=None):
        return self._act_fwd("relu", x, out)

    def relu_bwd(self, y, grad_output):
        return self._act_bwd("relu", y, grad_output)

    def tanh_fwd(self, x, out=None):
        return self._act_fwd("tanh", x, out)

    def tanh_bwd(self, y, grad_output):
        return self._act_bwd("tanh", y, grad_output)

    def leaky_relu_fwd(self, x, negative_slope=0.01, out=None):
        return self._act_fwd("leaky_relu", x, out, negative_slope=negative_slope)

    def leaky_relu_bwd(self, y, grad_output, negative_slope=0.01):
        return self._act_bwd("leaky_relu", y, grad_output, negative_slope=negative_slope)

    def elu_fwd(self, x, alpha=1.0, out=None):
        return self._act_fwd("elu", x, out, alpha=alpha)

    def elu_bwd(self, y, grad_output, alpha=1.0):
        return self._act_bwd("elu", y, grad_output, alpha=alpha)

    # -- bias + activation ---------------------------------------------------------------------
    def bias_act_fwd(self, z, bias, activation):
        bias_fits = bias is None or (bias.dtype == z.dtype and bias.flags.c_contiguous)
        if z.ndim == 0 or z.size == 0 or not _fits(z) or not bias_fits:
            return super().bias_act_fwd(z, bias, activation)
        cols = z.shape[-1]
        rows = z.size // cols
        kernel = load_kernel("bias_act", f"bias_act_fwd<{KERNEL_DTYPES[z.dtype]}>")
        kernel((self._grid(z.size, z.itemsize),), (BLOCK,),
               (z, bias if bias is not None else z, np.int64(rows), np.int64(cols),
                np.int32(bias is not None), np.int32(ACT_CODES[activation]), np.float64(0.0)))
        return z

    def bias_act_bwd(self, y, grad_output, activation, need_bias):
        if not need_bias or y.size == 0 or y.ndim == 0:
            return super().bias_act_bwd(y, grad_output, activation, need_bias)
        if not grad_output.flags.c_contiguous:
            grad_output = cupy.ascontiguousarray(grad_output)
        if not _fits(y, grad_output):
            return super().bias_act_bwd(y, grad_output, activation, need_bias)
        cols = y.shape[-1]
        rows = y.size // cols
        name = KERNEL_DTYPES[y.dtype]
        if y.size <= SMALL_EPILOGUE:  # one launch: fewer host calls matter more than bandwidth here
            grad_pre = cupy.empty_like(y)
            grad_bias = cupy.empty(cols, dtype=y.dtype)
            load_kernel("bias_act", f"bias_act_bwd_small<{name}>")(
                (math.ceil(cols / 32),), (32, 8),
                (y, grad_output, grad_pre, grad_bias, np.int64(rows), np.int64(cols),
                 np.int32(ACT_CODES[activation]), np.float64(0.0)))
            return grad_pre, grad_bias
        pack = 16 // y.itemsize
        vectorized = cols % pack == 0 and all(a.data.ptr % 16 == 0 for a in (y, grad_output))
        per_thread = pack if vectorized else 1
        threads = 128
        col_blocks = math.ceil(cols / (threads * per_thread))
        chunks = max(1, min(rows, (self.sm_count * 8) // col_blocks))
        rows_per_chunk = math.ceil(rows / chunks)
        chunks = math.ceil(rows / rows_per_chunk)
        accum = np.float64 if y.dtype == np.float64 else np.float32
        partial = cupy.empty((chunks, cols), dtype=accum)
        grad_pre = cupy.empty_like(y)
        grad_bias = cupy.empty(cols, dtype=y.dtype)
        load_kernel("bias_act", f"bias_act_bwd<{name}>")(
            (col_blocks, chunks), (threads,),
            (y, grad_output, grad_pre, partial, np.int64(rows), np.int64(cols), np.int64(rows_per_chunk),
             np.int32(ACT_CODES[activation]), np.float64(0.0), np.int32(vectorized)))
        load_kernel("bias_act", f"column_sum<{name}>")(
            (max(1, math.ceil(cols / BLOCK)),), (BLOCK,), (partial, grad_bias, np.int64(chunks), np.int64(cols)))
        return grad_pre, grad_bias

    # -- softmax + cross-entropy ---------------------------------------------------------------
    def _xent_kernel_fits(self, logits, labels):
        return logits.ndim == 2 and logits.shape[0] > 0 and _fits(logits) and labels.dtype in (np.int64, np.int32)

    def checks_labels_on_device(self, logits, labels):
        return self._xent_kernel_fits(logits, labels)

    def softmax_xent(self, logits, labels):
        rows = logits.shape[0]
        if not self._xent_kernel_fits(logits, labels):
            return super().softmax_xent(logits, labels)
        labels = cupy.ascontiguousarray(labels)
        accum = np.float64 if logits.dtype == np.float64 else np.float32
        row_loss = cupy.empty(rows, dtype=accum)
        dlogits = cupy.empty_like(logits)
        label_type = "long long" if labels.dtype == np.int64 else "int"
        kernel = load_kernel("softmax_xent", f"softmax_xent_fwd<{KERNEL_DTYPES[logits.dtype]}, {label_type}>")
        warps_per_block = BLOCK // 32
        grid = max(1, min(math.ceil(rows / warps_per_block), self.sm_count * 16))
        loss = cupy.empty((), dtype=logits.dtype)
        if self._blocks_done is None:
            self._blocks_done = cupy.zeros(1, dtype=np.uint32)  # reset to 0 by each launch's last block
        kernel((grid,), (BLOCK,), (logits, labels, row_loss, dlogits, np.int64(rows), np.int64(logits.shape[1]),
                                   loss, self._blocks_done))
        return loss, dlogits

    # -- optimizer steps: up to 8 parameters per launch -----------------------------------------
    def _launch_multi(self, kernel_name, slots, first_mask, scalars):
        """slots: (param, grad, a, b) per parameter, all of one dtype; 8 per launch (blockIdx.y)."""
        kernel = load_kernel("optim", f"{kernel_name}<{KERNEL_DTYPES[slots[0][0].dtype]}>")
        for start in range(0, len(slots), 8):
            chunk = slots[start:start + 8]
            args = []
            for param, grad, a, b in chunk + [chunk[0]] * (8 - len(chunk)):
                args += [param, grad, a, b, np.int64(param.size)]
            mask = (first_mask >> start) & 0xFF
            blocks = max(self._grid(p.size) for p, _, _, _ in chunk)
            kernel((blocks, len(chunk)), (BLOCK,), (*args, np.int32(mask), *scalars))

    def sgd_step(self, params, grads, states, lr, momentum, dampening, nesterov, weight_decay):
        by_dtype, first_mask = {}, {}
        for param, grad, state in zip(params, grads, states):
            if not _fits(param, grad) or param.dtype == np.float16:
                self._sgd_one(param, grad, state, lr, momentum, dampening, nesterov, weight_decay)
                continue
            slots = by_dtype.setdefault(param.dtype, [])
            buf = state.get("momentum_buffer")
            if momentum != 0 and buf is None:
                buf = state["momentum_buffer"] = cupy.empty_like(param)
                first_mask[param.dtype] = first_mask.get(param.dtype, 0) | (1 << len(slots))
            slots.append((param, grad, buf if buf is not None else param, param))
        for dtype, slots in by_dtype.items():
            self._launch_multi("sgd_step", slots, first_mask.get(dtype, 0),
                               (np.float64(lr), np.float64(momentum), np.float64(dampening),
                                np.float64(weight_decay), np.int32(bool(nesterov))))

    def adam_step(self, params, grads, states, lr, beta1, beta2, eps, weight_decay, decoupled):
        groups = {}  # (dtype, step) -> slots: the bias corrections depend on the step
        for param, grad, state in zip(params, grads, states):
            if not _fits(param, grad) or param.dtype == np.float16:
                self._adam_one(param, grad, state, state["step"], lr, beta1, beta2, eps, weight_decay, decoupled)
                continue
            m, v = state.get("exp_avg"), state.get("exp_avg_sq")
            if m is None:  # NOTE: not setdefault, whose default would allocate and zero-fill every step
                m = state["exp_avg"] = cupy.zeros_like(param)
                v = state["exp_avg_sq"] = cupy.zeros_like(param)
            groups.setdefault((param.dtype, state["step"]), []).append((param, grad, m, v))
        for (dtype, step), slots in groups.items():
            self._launch_multi("adam_step", slots, 0,
                               (np.float64(lr), np.float64(beta1), np.float64(beta2), np.float64(eps),
                                np.float64(weight_decay), np.int32(bool(decoupled)),
                                np.float64(lr / (1 - beta1 ** step)), np.float64(math.sqrt(1 - beta2 ** step))))


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
