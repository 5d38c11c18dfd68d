"""A stand-in for CuPy on the CPU, for tests/test_launch_signatures.py only: arrays are numpy arrays of a
CuPy-named type, kernels, streams and graphs are no-ops, and every kernel launch is recorded with the
types of its arguments (``CALLS``). It checks glue (what the launch wrappers pass); cuBLAS's GEMMs
(``cuda/cublas.py``) and the activation, epilogue, cross-entropy and layer-norm kernels (``_kernels.py``)
compute from the memory their arguments point at, so their glue is checked by the result too."""
import numpy as _np
import functools as _functools
from numpy import *  # noqa
from . import cuda  # noqa
from . import _kernels
import importlib as _il
random = _il.import_module("cupy.random")


def _rewrap(value):
    if isinstance(value, _np.generic):  # CuPy returns 0-d arrays where numpy returns scalars
        return _np.asarray(value).view(ndarray)
    if isinstance(value, _np.ndarray) and not isinstance(value, ndarray):
        return value.view(ndarray)
    if isinstance(value, tuple):
        return tuple(_rewrap(v) for v in value)
    return value


def _wrapfn(fn):
    @_functools.wraps(fn)
    def call(*a, **k):
        return _rewrap(fn(*a, **k))
    return call
class ndarray(_np.ndarray):
    def set(self, arr, stream=None):
        from .cuda import _current
        import builtins
        if builtins.any(st._capturing for st in _current):
            raise RuntimeError("cupy stand-in: ndarray.set (a host-to-device copy) while a stream captures")
        SETS.append(_np.array(arr))
        self[...] = arr
    def get(self, stream=None):
        return _np.asarray(self).view(_np.ndarray).copy()
    @property
    def data(self):
        class _D: ptr = self.ctypes.data; device_id = 0
        return _D()
def _wrap(a): return _np.asarray(a).view(ndarray)
def asarray(a, dtype=None): return _wrap(_np.asarray(a, dtype=dtype))
def empty_like(a, *k, **kw): return _wrap(_np.empty_like(a, *k, **kw))
def zeros_like(a, *k, **kw): return _wrap(_np.zeros_like(a, *k, **kw))
def empty(*a, **k): return _wrap(_np.empty(*a, **k))
def zeros(*a, **k): return _wrap(_np.zeros(*a, **k))
def ones(*a, **k): return _wrap(_np.ones(*a, **k))
def ascontiguousarray(a): return _wrap(_np.ascontiguousarray(a))
def asnumpy(a): return _np.asarray(a).view(_np.ndarray).copy()
def matmul(a, b): return _wrap(_np.matmul(a, b))
CALLS = []  # (kernel name expression, [argument type tags]) per launch
SETS = []  # host arrays written into device arrays with ndarray.set


def _tag(value):
    """What a kernel argument is, as the parameter types nvcc compiles are compared with it."""
    if isinstance(value, _np.ndarray):
        return f"pointer to {value.dtype.name}"
    return {_np.uint64: "uint64", _np.int64: "int64", _np.int32: "int32", _np.float64: "float64",
            _np.float32: "float32"}.get(type(value), f"Python {type(value).__name__}")


class RawModule:
    def __init__(self, code, options, name_expressions): self.options = options
    def compile(self): pass
    def get_function(self, name):
        def launch(grid, block, args):
            CALLS.append((name, [_tag(a) for a in args]))
            _kernels.run(name, grid, args)  # what the kernel computes (cupy/_kernels.py)
        return launch
class _Pool:
    def malloc(self, n): return None
    def used_bytes(self): return 0
    def total_bytes(self): return 0
    def free_all_blocks(self): pass
_pool = _Pool()
def get_default_memory_pool(): return _pool

for _name in dir(_np):
    _obj = getattr(_np, _name)
    if callable(_obj) and not isinstance(_obj, type) and _name not in globals().get("_KEEP", ()) and not _name.startswith("_"):
        if _name in ("asarray", "empty_like", "zeros_like", "empty", "zeros", "ones", "ascontiguousarray", "asnumpy", "matmul"):
            continue
        globals()[_name] = _wrapfn(_obj) if not isinstance(_obj, _np.ufunc) else _obj
