"""Mixed precision: ``autocast`` (bfloat16 or float16 GEMMs, float32 where precision matters) and
``GradScaler`` (float16's loss scaling, PyTorch's semantics).

Under ``with gpugrad.autocast("bfloat16"):`` each op runs in the dtype its class says (``Function.amp``):

=========== ============================================================ ===============================
``amp``     ops                                                          inputs
=========== ============================================================ ===============================
"low"       matmul (``@``), ``F.linear`` / ``nn.Linear`` (with its fused  float32 (and the other low type)
            bias + activation), ``einsum``                                cast to the autocast dtype
"float32"   softmax, log_softmax, the losses (cross_entropy, nll, mse,   float16 / bfloat16 cast to
            l1, smooth_l1, huber, the binary cross-entropies, svm's       float32
            parts), normalize, layer_norm, batch_norm, sum, prod, cumsum,
            norm, exp, log, log1p, expm1, rsqrt, reciprocal, pow
(none)      everything else                                               as given; mixed dtypes
                                                                          promote (PyTorch's rule)
=========== ============================================================ ===============================

float64 inputs are never cast (as in PyTorch). A "low" op's result is in the low dtype; its GEMM
multiplies low-precision operands and accumulates in float32 (cuBLAS's 32-bit compute type on a
GPU; float32 numpy on the CPU). Parameters and their gradients stay float32 (the cast is a graph
node: the gradient comes back in float32). Inside one autocast region a parameter (a leaf that
requires grad) is cast once and the cast reused, until it changes or the outermost region exits.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from . import autograd
from .dtypes import DEFAULT_FLOAT, LOW_FLOATS, bfloat16
from .optim.optimizer import unscale_check
from .tensor import Tensor

__all__ = ["autocast", "GradScaler", "is_autocast_enabled", "get_autocast_dtype", "PRECISIONS"]

# ``--precision`` of ``gpugrad train`` and ``gpugrad bench``: the autocast dtype of each (None: float32 ops;
# tf32 turns on TF32 GEMMs on a GPU, fp16 adds a GradScaler). Defined once here.
PRECISIONS = {"fp32": None, "tf32": None, "bf16": "bfloat16", "fp16": "float16"}


class _State(threading.local):
    dtype = None  # the autocast dtype of this thread's innermost region, or None
    depth = 0  # open enabled regions in this thread
    cache = None  # id(parameter) -> (parameter, version, cast tensor), per outermost region


_state = _State()
_open = [0]  # enabled regions open in every thread: the engine asks this module only while it is > 0
_lock = threading.Lock()


def _low_dtype(dtype) -> np.dtype:
    name = getattr(dtype, "name", None) or str(dtype)
    if name in ("bfloat16", "bf16"):
        return bfloat16()
    if name in ("float16", "fp16", "half"):
        return np.dtype(np.float16)
    raise ValueError(f"autocast: dtype must be 'bfloat16' or 'float16', got {dtype!r}")


def is_autocast_enabled() -> bool:
    return _state.dtype is not None


def get_autocast_dtype():
    return _state.dtype


class autocast(contextlib.ContextDecorator):
    """Context manager and decorator: ops inside run in mixed precision (see the module's table).
    ``enabled=False`` turns it off inside an enclosing region. State is per thread and restored on exit,
    exceptions included."""

    def __init__(self, mode=None, enabled: bool = True, *, dtype=None, device_type=None, cache_enabled=None):
        """``autocast("bfloat16")`` or PyTorch's spelling ``autocast("cuda", dtype=...)`` / ``autocast(device_type=
        "cpu")`` (the dtype then defaults as PyTorch's: float16 on "cuda", bfloat16 on "cpu")."""
        if mode in ("cpu", "cuda") or device_type is not None:
            device_type = device_type or mode
            dtype = dtype or ("float16" if device_type == "cuda" else "bfloat16")
        elif mode is not None and dtype is not None:
            raise TypeError(f"autocast: the dtype given twice ({mode!r} and dtype={dtype!r})")
        dtype = mode if dtype is None and mode is not None else dtype or "bfloat16"
        self.enabled = bool(enabled)
        self.dtype = _low_dtype(dtype) if self.enabled else None
        self._spec = dtype

    def _recreate_cm(self):
        return type(self)(self._spec, self.enabled)  # (the dtype: PyTorch's spelling is resolved already)

    def __enter__(self):
        self._saved = _state.dtype
        _state.dtype = self.dtype
        if self.enabled:
            if _state.depth == 0:
                _state.cache = {}
            _state.depth += 1
            with _lock:
                _open[0] += 1
            autograd.features.plug("autocast", cast_inputs)
        return self

    def __exit__(self, *exc_info):
        _state.dtype = self._saved
        if self.enabled:
            _state.depth -= 1
            if _state.depth == 0:
                _state.cache = None
            with _lock:
                _open[0] -= 1
                if _open[0] == 0:
                    autograd.features.plug("autocast", None)
        return False


def cast_inputs(function, inputs):
    """The engine's call (``autograd.features.autocast``) for a Function whose class has ``amp``: its inputs in the
    dtype the table gives, or unchanged outside an autocast region (this thread's)."""
    target = _state.dtype
    if target is None:
        return inputs
    to = target if function.amp == "low" else DEFAULT_FLOAT
    return tuple(_cast(x, to) for x in inputs)


def _cast(x, dtype):
    if not isinstance(x, Tensor) or x.dtype == dtype or x.dtype == np.float64 or \
            (x.dtype not in LOW_FLOATS and x.dtype != DEFAULT_FLOAT):
        return x
    if dtype == DEFAULT_FLOAT and x.dtype not in LOW_FLOATS:
        return x
    cacheable = x.creator is None and x.requires_grad and _state.cache is not None
    if cacheable:
        hit = _state.cache.get(id(x))
        if hit is not None and hit[0] is x and hit[1] == x._version[0] and hit[2].dtype == dtype:
            return hit[2]
    cast = x.astype(dtype)
    if cacheable:
        _state.cache[id(x)] = (x, x._version[0], cast)
    return cast


class GradScaler:
    """Loss scaling for float16 (PyTorch's ``torch.amp.GradScaler``): ``scaler.scale(loss).backward()``,
    ``scaler.step(opt)`` (unscales the gradients, skips the step if any is inf or NaN), ``scaler.update()``
    (the scale halves after a skipped step, doubles after ``growth_interval`` clean ones),
    ``scaler.unscale_(opt)`` before clipping, ``get_scale()``, ``state_dict`` / ``load_state_dict``.

    Nothing is read back to the host during a step (PyTorch's scaler reads its inf flag every step):
    the scale, the growth tracker and each optimizer's "found inf" flag live on the device; a check of the
    gradients sets the flag (``unscale_check`` kernel on a GPU), the optimizer's kernel unscales the
    gradients as it reads them and skips its update where the flag is set (its step counts too), and
    ``update`` moves the scale on the device (``update_scale``).
    So a float16 step never waits for the GPU, and a captured one (``gpugrad.compile``) replays it
    whole. The exceptions, each one host read: SGD's first momentum step, parameters no kernel takes
    (float16 ones), ``get_scale()`` and ``state_dict()``.
    """

    def __init__(self, init_scale=65536.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 enabled=True):
        if not (init_scale > 0 and growth_factor > 1 and 0 < backoff_factor < 1 and int(growth_interval) >= 1):
            raise ValueError("GradScaler: init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and "
                             f"growth_interval >= 1 are needed, got {init_scale}, {growth_factor}, {backoff_factor}, "
                             f"{growth_interval}")
        self.enabled = bool(enabled)
        self._init_scale, self._growth_factor, self._backoff_factor = float(init_scale), growth_factor, backoff_factor
        self._growth_interval, self._init_tracker = int(growth_interval), 0
        self._scale = self._tracker = None  # a 0-d float32 tensor and a 0-d int32 array, made on the first scale()
        self._unscaled, self._found_inf = set(), {}  # id(optimizer) -> {backend: 0-d float32 flag}

    # -- the three calls of a step ---------------------------------------------------------------
    def scale(self, outputs):
        """``outputs`` times the scale (a tensor, or lists / tuples of them)."""
        if not self.enabled:
            return outputs
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        if not isinstance(outputs, Tensor):
            raise TypeError(f"GradScaler.scale: expected a tensor, got {type(outputs).__name__}")
        if self._scale is None:
            backend = outputs.backend
            self._scale = Tensor._make(backend.asarray(np.full((), self._init_scale, np.float32)), False)
            self._tracker = backend.asarray(np.full((), self._init_tracker, np.int32))
        return outputs * self._scale.astype(outputs.dtype) if outputs.dtype != np.float32 else outputs * self._scale

    def unscale_(self, optimizer):
        """Divide ``optimizer``'s gradients by the scale, in place, and set its flag where any is inf or NaN."""
        if not self.enabled:
            return
        if autograd.replayed_call(lambda: self.unscale_(optimizer), optimizer):
            return
        if id(optimizer) in self._unscaled:
            raise RuntimeError("GradScaler.unscale_() was already called on this optimizer since the last update()")
        self._unscaled.add(id(optimizer))
        self._check(optimizer, write=True)

    def _check(self, optimizer, write):
        """Set the optimizer's flags ({backend: 0-d float32}) where a gradient over the scale is inf or NaN, and
        unscale the gradients in place if ``write``; returns {backend: the scale} (None without a scale)."""
        flags = self._found_inf[id(optimizer)] = {}
        if self._scale is None:
            return None
        grads, scales = {}, {}
        for p in optimizer.params:
            if p.grad is not None:
                grads.setdefault(p.grad.backend, []).append(p.grad.data)
        for backend, arrays in grads.items():
            found = flags[backend] = backend.xp.zeros((), np.float32)
            scale = scales[backend] = self._scale.data if self._scale.backend is backend else \
                backend.asarray(self._scale.numpy())
            left = range(len(arrays)) if backend.kernels is None else \
                backend.kernels.unscale_check(arrays, scale, found, write)
            unscale_check(backend.xp, [arrays[i] for i in left], scale, found, write)
        return scales

    def step(self, optimizer):
        """``optimizer.step()`` unless a gradient is inf or NaN, decided on the device. Without ``unscale_``
        before it, the gradients are checked in one pass and unscaled by the optimizer's kernel as it reads
        them (the formula path unscales them first): one pass over them fewer."""
        if not self.enabled:
            return optimizer.step()
        if autograd.replayed_call(lambda: self.step(optimizer), optimizer):
            return None
        scales = None
        if id(optimizer) not in self._unscaled:
            scales = self._check(optimizer, write=False)
        flags = self._found_inf[id(optimizer)]
        if flags and getattr(optimizer, "_step_supports_amp_scaling", False):  # PyTorch's protocol: the step unscales
            return optimizer.step(grad_scale=scales, found_inf=flags)        # and skips, on the device
        if flags:  # another optimizer: unscaled here, and its step skipped after one host read of the flags
            if scales is not None:
                self._check(optimizer, write=True)
            if any(bool(f) for f in flags.values()):
                return None
        return optimizer.step()

    def update(self, new_scale=None):
        """After a step: back off if any optimizer saw inf or NaN, else grow every ``growth_interval`` steps."""
        if not self.enabled or self._scale is None:
            return
        if autograd.replayed_call(lambda: self.update(new_scale), self):
            return
        backend, scale = self._scale.backend, self._scale.data
        if new_scale is not None:
            scale[...] = float(new_scale)
        else:
            flags = [f if b is backend else backend.asarray(b.to_numpy(f)) for fs in self._found_inf.values()
                     for b, f in fs.items()]
            found = flags[0] if len(flags) == 1 else sum(flags, backend.xp.zeros((), np.float32))
            if backend.kernels is not None:
                backend.kernels.update_scale(scale, self._tracker, found, self._growth_factor, self._backoff_factor,
                                             self._growth_interval)
            else:
                update_scale(scale, self._tracker, found, self._growth_factor, self._backoff_factor,
                             self._growth_interval)
        self._unscaled.clear()
        self._found_inf.clear()

    # -- state ------------------------------------------------------------------------------------
    def get_scale(self) -> float:
        if not self.enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(self._scale.item())

    @property
    def _growth_tracker(self) -> int:
        return self._init_tracker if self._tracker is None else int(self._tracker)

    def state_dict(self) -> dict:
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor, "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval, "_growth_tracker": self._growth_tracker} if self.enabled else {}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            raise RuntimeError("GradScaler.load_state_dict: the state is empty (saved from a disabled scaler)")
        self._init_scale, self._init_tracker = float(state["scale"]), int(state["_growth_tracker"])
        if self._scale is not None:
            self._scale.data[...] = self._init_scale
            self._tracker[...] = self._init_tracker
        self._growth_factor, self._backoff_factor = state["growth_factor"], state["backoff_factor"]
        self._growth_interval = int(state["growth_interval"])


# -- the scaler's arithmetic where no kernel applies (the CPU); optim.cu computes the same on a GPU ------

def update_scale(scale, tracker, found, growth, backoff, interval):
    """PyTorch's ``_amp_update_scale_``: back off after inf or NaN, grow after ``interval`` clean steps."""
    if found:
        scale *= np.float32(backoff)
        tracker[...] = 0
        return
    tracker += 1
    if int(tracker) == interval:
        grown = scale * np.float32(growth)
        if np.isfinite(grown):
            scale[...] = grown
        tracker[...] = 0
