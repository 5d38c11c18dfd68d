"""Every launch of gpugrad's fused CUDA kernels (``kernels/*.cu``), one thin checked wrapper each.

A wrapper returns ``None`` when its kernel does not apply (a dtype the kernels are not built for,
a non-contiguous array, an empty or 0-d one): the op that called it then runs its ``xp`` formula,
which computes the same arithmetic. Kernels are compiled lazily, once per process (CuPy also
caches the binaries on disk), with the activation codes of ``gpugrad.ops.activation.ACTIVATIONS``
passed as defines, so the Python table is the one definition the ``.cu`` dispatch uses.

Imported only for CuPy arrays: ``import gpugrad`` never imports this module or CuPy.
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from pathlib import Path

import cupy
import numpy as np

from ..dtypes import LOW_FLOATS, known_bfloat16

try:  # CuPy's bfloat16 arrays are ml_dtypes' (an extra of the CUDA installs)
    import ml_dtypes  # noqa: F401
except ImportError:
    pass
BFLOAT16 = known_bfloat16()
from ..ops.formulas import ACTIVATIONS, activation_code
from . import sources
from .sources import kernel_source  # noqa: F401 -- named here for the compile tests (tests/nvrtc_compile.py)

DTYPES = {np.dtype(np.float16): "__half", np.dtype(np.float32): "float", np.dtype(np.float64): "double",
          **({BFLOAT16: "__nv_bfloat16"} if BFLOAT16 is not None else {})}
KERNELS = {
    "activation": [f"{a}_{d}<{t}>" for a in ACTIVATIONS for d in ("fwd", "bwd") for t in DTYPES.values()],
    "bias_act": [f"{k}<{t}>" for k in ("bias_act_fwd", "bias_act_bwd", "bias_act_bwd_small", "column_sum")
                 for t in DTYPES.values()],
    "softmax_xent": [f"softmax_xent_fwd<{t}, {l}>" for t in DTYPES.values() for l in ("long long", "int")],
    "optim": [f"{k}<{t}>" for k in ("sgd_step", "adam_step") for t in ("float", "double")]
             + [f"unscale_check<{t}>" for t in DTYPES.values()] + ["count_steps", "update_scale"],
    "layer_norm": [f"{k}<{t}>" for k in ("layer_norm_fwd", "layer_norm_bwd") for t in DTYPES.values()],
    "dropout": [f"dropout_fwd<{t}>" for t in DTYPES.values()] + ["dropout_advance"],
}
BLOCK = 256
SMALL_EPILOGUE = 1 << 20  # elements up to which the bias gradient is summed in the same launch
_MODULES: dict = {}
_FUNCTIONS: dict = {}
_HALF = {"available": True}
_SM_COUNT: dict = {}


def compile_options(half: bool = True) -> tuple:
    """nvcc/NVRTC options: the activation codes from the Python table, and exact a*b+c rounding."""
    codes = tuple(f"-DGPUGRAD_ACT_{name.upper()}={a.code}" for name, a in ACTIVATIONS.items())
    # NOTE: -fmad=false keeps a*b+c rounded as numpy rounds it, so CPU-GPU parity holds to the ulp for normal
    # numbers; CuPy adds -ftz=true (cupy/cuda/compiler.py), so float32 subnormals flush to zero on a GPU.
    return ("-std=c++17", "-fmad=false", f"-I{sources.kernel_dir()}") + codes + (
        _cuda_include_dirs() if half else ("-DGPUGRAD_NO_HALF",))


def _cuda_include_dirs() -> tuple:
    """Folders holding cuda_fp16.h: the toolkit's, or the NVIDIA wheels' (CuPy may not pass them to NVRTC)."""
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
    source = sources.kernel_source(module_name)
    names = [n for n in KERNELS[module_name] if half or ("__half" not in n and "bfloat16" not in n)]
    module = cupy.RawModule(code=source, options=compile_options(half), name_expressions=names)
    module.compile()
    return module


def load_kernel(module_name: str, expression: str):
    """The compiled kernel ``expression`` (e.g. ``"sigmoid_fwd<float>"``) of ``kernels/<module_name>.cu``."""
    key = (module_name, expression, cupy.cuda.runtime.getDevice())
    function = _FUNCTIONS.get(key)
    if function is not None:
        return function
    module = _MODULES.get(module_name)
    if module is None:
        try:
            module = _compile(module_name, _HALF["available"])
        except cupy.cuda.compiler.CompileException as error:
            if not _HALF["available"] or "fp16" not in str(error):
                raise
            warnings.warn(f"gpugrad: CUDA half-precision headers not found ({str(error).splitlines()[0]}); "
                          "float16 and bfloat16 use the generic CuPy path", RuntimeWarning)
            _HALF["available"] = False
            module = _compile(module_name, False)
        _MODULES[module_name] = module
    function = _FUNCTIONS[key] = module.get_function(expression)
    return function


def fits(*arrays) -> bool:
    """Arrays the kernels take: CuPy, non-empty, one dtype they are built for, C-contiguous."""
    first = arrays[0]
    if not isinstance(first, cupy.ndarray) or first.size == 0 or first.ndim == 0:
        return False
    dtype = first.dtype
    if dtype not in DTYPES or (dtype in LOW_FLOATS and not _HALF["available"]):
        return False
    return all(a.dtype == dtype and a.flags.c_contiguous for a in arrays)


_NULL = np.uint64(0)


def _pointer(array):
    return _NULL if array is None else array


def _sm_count() -> int:
    device = cupy.cuda.runtime.getDevice()
    sms = _SM_COUNT.get(device)
    if sms is None:
        sms = _SM_COUNT[device] = cupy.cuda.Device(device).attributes["MultiProcessorCount"]
    return sms


def _grid(n: int, itemsize: int = 1) -> int:
    """Blocks for a grid-stride loop over n elements, 64 bytes (four 16-byte packs) per thread per trip."""
    per_thread = max(1, 64 // itemsize) if itemsize > 1 else 1
    return max(1, min(math.ceil(n / (BLOCK * per_thread)), _sm_count() * 32))


# -- activations ----------------------------------------------------------------------------------

def activation_forward(name, x, param, out=None):
    """y = act(x) in one pass (``out`` may be x); None where the kernel does not apply."""
    if not fits(x) or (out is not None and not fits(x, out)):
        return None
    y = cupy.empty_like(x) if out is None else out
    load_kernel("activation", f"{name}_fwd<{DTYPES[x.dtype]}>")(
        (_grid(x.size, x.itemsize),), (BLOCK,), (x, y, np.int64(x.size), np.float64(param)))
    return y


def activation_backward(name, y, grad_output, param):
    """dx from the saved output y and dy in one pass; None where the kernel does not apply."""
    if not fits(y, grad_output):
        return None
    gx = cupy.empty_like(y)
    load_kernel("activation", f"{name}_bwd<{DTYPES[y.dtype]}>")(
        (_grid(y.size, y.itemsize),), (BLOCK,), (y, grad_output, gx, np.int64(y.size), np.float64(param)))
    return gx


# -- the linear layer's epilogue ------------------------------------------------------------------

def bias_act_forward(z, bias, activation, param):
    """z = act(z + bias) in place (z is the fresh GEMM output); None where the kernel does not apply."""
    if not fits(z) or (bias is not None and (bias.dtype != z.dtype or not bias.flags.c_contiguous)):
        return None
    cols = z.shape[-1]
    load_kernel("bias_act", f"bias_act_fwd<{DTYPES[z.dtype]}>")(
        (_grid(z.size, z.itemsize),), (BLOCK,),
        (z, bias if bias is not None else z, np.int64(z.size // cols), np.int64(cols), np.int32(bias is not None),
         np.int32(activation_code(activation)), np.float64(param)))
    return z


def bias_act_backward(y, grad_output, activation, param):
    """(grad_pre, grad_bias): dy * act'(y) and its column sums in one pass (deterministic: per-chunk
    sums, then a second launch adds the chunks); None where the kernel does not apply."""
    if grad_output.__class__ is cupy.ndarray and not grad_output.flags.c_contiguous:
        grad_output = cupy.ascontiguousarray(grad_output)
    if not fits(y, grad_output):
        return None
    cols, code, name = y.shape[-1], np.int32(activation_code(activation)), DTYPES[y.dtype]
    rows = y.size // cols
    grad_pre = cupy.empty_like(y)
    grad_bias = cupy.empty(cols, dtype=y.dtype)
    if y.size <= SMALL_EPILOGUE:  # one launch: fewer host calls matter more than bandwidth here
        load_kernel("bias_act", f"bias_act_bwd_small<{name}>")(
            (math.ceil(cols / 32),), (32, 8),
            (y, grad_output, grad_pre, grad_bias, np.int64(rows), np.int64(cols), code, np.float64(param)))
        return grad_pre, grad_bias
    pack = 16 // y.itemsize
    vectorized = cols % pack == 0 and all(a.data.ptr % 16 == 0 for a in (y, grad_output))
    threads = 128
    col_blocks = math.ceil(cols / (threads * (pack if vectorized else 1)))
    chunks = max(1, min(rows, (_sm_count() * 8) // col_blocks))
    rows_per_chunk = math.ceil(rows / chunks)
    chunks = math.ceil(rows / rows_per_chunk)
    partial = cupy.empty((chunks, cols), dtype=np.float64 if y.dtype == np.float64 else np.float32)
    load_kernel("bias_act", f"bias_act_bwd<{name}>")(
        (col_blocks, chunks), (threads,),
        (y, grad_output, grad_pre, partial, np.int64(rows), np.int64(cols), np.int64(rows_per_chunk), code,
         np.float64(param), np.int32(vectorized)))
    load_kernel("bias_act", f"column_sum<{name}>")(
        (max(1, math.ceil(cols / BLOCK)),), (BLOCK,), (partial, grad_bias, np.int64(chunks), np.int64(cols)))
    return grad_pre, grad_bias


# -- softmax + cross-entropy ----------------------------------------------------------------------
_BLOCKS_DONE: dict = {}


def softmax_xent_applies(logits, labels) -> bool:
    """Where the kernel runs it turns out-of-range labels into a NaN loss (no host check, no stall)."""
    return logits.ndim == 2 and fits(logits) and labels.dtype in (np.int64, np.int32)


def softmax_xent(logits, labels):
    """(mean loss, dlogits) of (N, C) logits in one launch, one warp per row; None where it does not apply."""
    if not softmax_xent_applies(logits, labels):
        return None
    rows = logits.shape[0]
    labels = cupy.ascontiguousarray(labels)
    row_loss = cupy.empty(rows, dtype=np.float64 if logits.dtype == np.float64 else np.float32)
    dlogits = cupy.empty_like(logits)
    loss = cupy.empty((), dtype=logits.dtype)
    device = cupy.cuda.runtime.getDevice()
    if device not in _BLOCKS_DONE:
        _BLOCKS_DONE[device] = cupy.zeros(1, dtype=np.uint32)  # reset to 0 by each launch's last block
    label_type = "long long" if labels.dtype == np.int64 else "int"
    warps_per_block = BLOCK // 32
    grid = max(1, min(math.ceil(rows / warps_per_block), _sm_count() * 16))
    load_kernel("softmax_xent", f"softmax_xent_fwd<{DTYPES[logits.dtype]}, {label_type}>")(
        (grid,), (BLOCK,), (logits, labels, row_loss, dlogits, np.int64(rows), np.int64(logits.shape[1]), loss,
                            _BLOCKS_DONE[device]))
    return loss, dlogits


# -- dropout: the mask drawn in the kernel (counter-based), the offset advanced on the device --------

def dropout(x, p, state, activation=None, param=0.0):
    """(y, scaled mask, act(x) or None) of dropout with probability ``p`` after ``activation`` (None: none);
    ``state`` is the device's (seed, offset) array (``CupyBackend.dropout_state``). None where it does not apply."""
    if not fits(x):
        return None
    y, scaled = cupy.empty_like(x), cupy.empty_like(x)
    activated = None if activation is None else cupy.empty_like(x)
    scale = np.float64(x.dtype.type(1 / (1 - p)))  # rounded to the dtype, as the formula's scale is
    load_kernel("dropout", f"dropout_fwd<{DTYPES[x.dtype]}>")(
        (_grid(x.size),), (BLOCK,), (x, y, scaled, np.int64(x.size), np.float32(p), scale, state,
                                     np.int32(activation_code(activation)), np.float64(param), _pointer(activated)))
    load_kernel("dropout", "dropout_advance")((1,), (32,), (state, np.int64(x.size)))
    return y, scaled, activated


# -- layer norm: one warp per row ------------------------------------------------------------------

def _rows_grid(rows: int) -> int:
    return max(1, min(math.ceil(rows / (BLOCK // 32)), _sm_count() * 16))


def layer_norm_forward(x, weight, bias, cols, eps):
    """(y, xhat, rstd) of layer norm over the last ``cols`` elements of each row (xhat and rstd in float32 for
    half precision); None where it does not apply (not C-contiguous, a dtype without kernels, mixed dtypes)."""
    if not fits(x) or x.size % cols or (weight is not None and not (
            fits(weight, bias) and weight.dtype == x.dtype and weight.size == cols == bias.size)):
        return None
    rows = x.size // cols
    compute = np.float64 if x.dtype == np.float64 else np.float32
    y, xhat, rstd = cupy.empty_like(x), cupy.empty(x.shape, dtype=compute), cupy.empty(rows, dtype=compute)
    null = np.uint64(0)
    load_kernel("layer_norm", f"layer_norm_fwd<{DTYPES[x.dtype]}>")(
        (_rows_grid(rows),), (BLOCK,), (x, null if weight is None else weight, null if bias is None else bias, y, xhat,
                                        rstd, np.int64(rows), np.int64(cols), np.float64(eps)))
    return y, xhat, rstd


def layer_norm_backward(grad_output, xhat, rstd, weight, cols):
    """dx of layer norm from the forward kernel's xhat and rstd; None where it does not apply."""
    if not fits(grad_output) or xhat.size != grad_output.size or (weight is not None and not fits(weight)):
        return None
    rows = grad_output.size // cols
    dx = cupy.empty_like(grad_output)
    load_kernel("layer_norm", f"layer_norm_bwd<{DTYPES[grad_output.dtype]}>")(
        (_rows_grid(rows),), (BLOCK,), (grad_output, xhat, rstd, np.uint64(0) if weight is None else weight, dx,
                                        np.int64(rows), np.int64(cols)))
    return dx


# -- optimizer steps and the loss scaler: up to 8 tensors per launch, nothing read back ---------------

def _launch_multi(kernel_name, slots, first_mask, scalars, flag, found_inf, scale):
    """slots: (param, grad, a, b, step) per parameter, all of one dtype; 8 per launch (blockIdx.y). ``scalars``: the
    hyperparameters as a float64 device array, which the kernel reads; ``flag``: its one structural switch (Nesterov,
    decoupled weight decay); ``scale`` (the GradScaler's, or None): the kernel unscales each gradient as it reads it."""
    kernel = load_kernel("optim", f"{kernel_name}<{DTYPES[slots[0][0].dtype]}>")
    for start in range(0, len(slots), 8):
        chunk = slots[start:start + 8]
        args = []
        for param, grad, a, b, step in chunk + [chunk[0]] * (8 - len(chunk)):
            args += [param, grad, a, b, np.int64(param.size), _pointer(step)]
        blocks = max(_grid(s[0].size) for s in chunk)
        kernel((blocks, len(chunk)), (BLOCK,), (*args, np.int32((first_mask >> start) & 0xFF), scalars,
                                                np.int32(bool(flag)), _pointer(found_inf), _pointer(scale)))


def optimizer_fits(param, grad) -> bool:
    """Whether the optimizer kernels take this parameter (float32 or float64, contiguous, on the GPU)."""
    return fits(param, grad) and param.dtype not in LOW_FLOATS


def count_steps(steps, found_inf):
    """Each 0-d float32 step count += 1 on the device, unless ``found_inf`` (a 0-d flag, or None) is set."""
    kernel = load_kernel("optim", "count_steps")
    for start in range(0, len(steps), 8):
        chunk = steps[start:start + 8]
        kernel((1,), (8,), (*chunk, *[chunk[0]] * (8 - len(chunk)), np.int32(len(chunk)), _pointer(found_inf)))


def sgd_step(params, grads, buffers, firsts, scalars, momentum, nesterov, found_inf=None, scale=None):
    """The SGD update of every parameter the kernel takes, 8 per launch; returns the indices it did not take.
    ``buffers``: the momentum buffers (None without momentum), ``firsts``: whether each is at its first update
    (the kernel writes d into it); ``scalars``: (lr, momentum, dampening, weight_decay) on the device;
    ``momentum``: whether it is nonzero. The state is made by ``optim.SGD.make_state``."""
    by_dtype, first_mask, left = {}, {}, []
    for i, (param, grad, buf, first) in enumerate(zip(params, grads, buffers, firsts)):
        if not optimizer_fits(param, grad):
            left.append(i)
            continue
        slots = by_dtype.setdefault(param.dtype, [])
        if momentum and first:
            first_mask[param.dtype] = first_mask.get(param.dtype, 0) | (1 << len(slots))
        slots.append((param, grad, buf if buf is not None else param, param, None))
    for dtype, slots in by_dtype.items():
        _launch_multi("sgd_step", slots, first_mask.get(dtype, 0), scalars, nesterov, found_inf, scale)
    return left


def adam_step(params, grads, exp_avgs, exp_avg_sqs, steps, scalars, decoupled, found_inf=None, scale=None):
    """The Adam/AdamW update of every parameter the kernel takes (its step counted first, on the device;
    the kernel computes the bias corrections from it); returns the indices it did not take.
    ``scalars``: (lr, beta1, beta2, eps, weight_decay) on the device. The state is made by
    ``optim.Adam.make_state``."""
    by_dtype, left = {}, []
    for i, (param, grad, m, v, step) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, steps)):
        if not optimizer_fits(param, grad):
            left.append(i)
            continue
        by_dtype.setdefault(param.dtype, []).append((param, grad, m, v, step))
    for slots in by_dtype.values():
        count_steps([s[4] for s in slots], found_inf)
        _launch_multi("adam_step", slots, 0, scalars, decoupled, found_inf, scale)
    return left


def unscale_check(grads, scale, found_inf, write=True):
    """grad *= 1 / scale for every gradient the kernel takes (``write=False``: only checked), setting
    ``found_inf`` where a value is inf or NaN; returns the indices it did not take."""
    by_dtype, left = {}, []
    for i, grad in enumerate(grads):
        if fits(grad):
            by_dtype.setdefault(grad.dtype, []).append(grad)
        else:
            left.append(i)
    for dtype, chunked in by_dtype.items():
        kernel = load_kernel("optim", f"unscale_check<{DTYPES[dtype]}>")
        for start in range(0, len(chunked), 8):
            chunk = chunked[start:start + 8]
            args = []
            for grad in chunk + [chunk[0]] * (8 - len(chunk)):
                args += [grad, np.int64(grad.size)]
            kernel((max(_grid(g.size, g.itemsize) for g in chunk), len(chunk)), (BLOCK,),
                   (*args, scale, found_inf, np.int32(bool(write))))
    return left


def update_scale(scale, tracker, found_inf, growth, backoff, interval):
    """The loss scale's update after a step (``GradScaler.update``), on the device."""
    load_kernel("optim", "update_scale")((1,), (1,), (scale, tracker, found_inf, np.float64(growth),
                                                       np.float64(backoff), np.int32(interval)))
