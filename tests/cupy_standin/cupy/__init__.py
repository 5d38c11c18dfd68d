"""A stand-in for CuPy on the CPU, for tests/test_launch_signatures.py only: arrays are numpy arrays of a
CuPy-named type; every kernel launch is recorded with the types of its arguments (``_CALLS``) and computed
in numpy from the memory its arguments point at (``_kernels.py``), as are cuBLAS's GEMMs (``cuda/cublas.py``);
stream capture records what runs and a graph's launch redoes it (``_graphs.py``). It checks glue -- what
gpugrad passes to kernels, cuBLAS and CUDA graphs -- by the results, never what a GPU computes. README.md
here lists each CuPy behaviour it imitates and the CuPy source it comes from."""
import builtins as _builtins
import sys as _sys
import numpy as _np
import functools as _functools
from ._cupy_names import NAMES as _NAMES
globals().update({_n: getattr(_np, _n) for _n in _NAMES if hasattr(_np, _n)})  # numpy's, where CuPy has the name
__version__ = "14.2.0"  # the CuPy it imitates
from . import cuda  # noqa
from . import _graphs, _kernels
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


import weakref as _weakref  # noqa: E402
_ROOTS = _weakref.WeakValueDictionary()  # id -> the numpy arrays whose memory device arrays use


def _root(array):
    while array.base is not None:
        array = array.base
    return array


def _method(name, in_place=False):
    """An array method that computes or writes: run, and recorded while a stream captures (cupy/_graphs.py)."""
    base = getattr(_np.ndarray, name)

    def method(self, *args, **kwargs):
        with _graphs.quiet():
            result = base(self, *args, **kwargs)
        wrapped = result if in_place else _rewrap(result)
        if _graphs.recording():
            def again():
                redone = base(self, *args, **kwargs)
                if not in_place:
                    _graphs.copy_back(wrapped, redone)
            _graphs.record(again)
        return wrapped
    method.__name__ = name
    return method


def _refuse_read(what):
    """A device-to-host copy and a wait for it, while the current stream captures: on a card cudaMemcpy of pageable
    memory and synchronizing a capturing stream fail (cudaErrorStreamCaptureUnsupported)."""
    from .cuda import get_current_stream
    if get_current_stream()._capturing and not _DEPTH[0]:
        raise RuntimeError(f"cupy stand-in: {what} (a device-to-host copy) while the current stream captures")


_SCATTER_OPS = {"add", "subtract", "maximum", "minimum", "bitwise_and", "bitwise_or", "bitwise_xor"}  # scatter_op=
_DEPTH = [0]  # > 0 inside a call already checked, or inside the stand-in's own numpy (kernels, graph launches)


def _implicit_conversion_refused(original):
    """numpy's asarray / array / asanyarray as CuPy leaves them: a device array refuses to become a host one
    implicitly (``ndarray.__array__`` raises in cupy/_core/core.pyx); the stand-in's own modules (cupy.*, cupyx.*)
    and numpy inside a call CuPy handles still convert. NOTE: numpy's C code calls the originals, untouched."""
    def convert(a, *args, **kwargs):
        if isinstance(a, ndarray) and not _DEPTH[0] and not _sys._getframe(1).f_globals.get(
                "__name__", "").startswith(("cupy", "cupyx")):
            raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                            "NumPy array explicitly.")
        return original(a, *args, **kwargs)
    convert.__name__, convert.__doc__ = original.__name__, original.__doc__
    return convert


class _internal:
    def __enter__(self):
        _DEPTH[0] += 1

    def __exit__(self, *exc):
        _DEPTH[0] -= 1


def _host_read(name):
    """An ndarray method that reads the value on the host: refused while the current stream captures."""
    base = getattr(_np.ndarray, name)

    def method(self, *args):
        _refuse_read(name)
        return base(self, *args)
    method.__name__ = name
    return method


class ndarray(_np.ndarray):
    def __array_finalize__(self, obj):
        if not isinstance(self.base, ndarray):
            _graphs.OWNERS[id(self)] = self
            root = _root(self)
            if id(root) not in _ROOTS:  # new memory: the allocator in use (using_allocator) hands it out
                _ROOTS[id(root)] = root
                from .cuda import _allocators, _next
                if _allocators and _allocators[-1] is not None:
                    _next[0] = root.ctypes.data
                    try:
                        _allocators[-1](root.nbytes)
                    finally:
                        _next[0] = None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        call = dict(kwargs)
        out = kwargs.get("out")
        if method == "at" and ufunc.__name__ not in _SCATTER_OPS:  # CuPy's ufunc.at: a._scatter_op, where there is one
            raise NotImplementedError(f"`cupy_{ufunc.__name__}.at` is not supported yet")
        checked = inputs[:1] if method == "at" else inputs  # at's indices and values go as in a[indices] = values
        for value in checked + tuple(out or ()) if not _DEPTH[0] else ():  # CuPy's _preprocess_arg: a cupy array,
            if not isinstance(value, (ndarray, int, float, complex, _np.generic)):  # else a scalar (CScalar): a
                raise TypeError(f"Unsupported type {type(value)}")  # numpy array, a list, a tuple are refused
        if out is not None:
            call["out"] = tuple(_graphs.plain(o) for o in out)
        with _graphs.quiet():
            result = getattr(ufunc, method)(*_graphs.plain(inputs), **call)
        if method == "at":
            wrapped = None
        elif out is not None:
            wrapped = out[0] if len(out) == 1 else tuple(out)
        else:
            wrapped = _rewrap(result)
        if _graphs.recording():
            def again():
                redone = getattr(ufunc, method)(*_graphs.plain(inputs), **call)
                if out is None and method != "at":
                    _graphs.copy_back(wrapped, redone)
            _graphs.record(again)
        return wrapped

    def __array_function__(self, func, types, args, kwargs):
        def hosts(value):
            if isinstance(value, (list, tuple)):
                return _builtins.any(hosts(v) for v in value)  # NOTE: the module's own `any` is numpy's
            return isinstance(value, _np.ndarray) and not isinstance(value, ndarray)
        if not _DEPTH[0] and func.__module__ == "numpy" and func.__name__ not in _NAMES:
            # CuPy's __array_function__ (cupy/_core/core.pyx) hands numpy's call to CuPy's function of the same name,
            # and answers NotImplemented where CuPy has none: numpy then raises this
            raise TypeError(f"no implementation found for 'numpy.{func.__name__}' on types that implement "
                            f"__array_function__: {[t for t in types]}")
        if not _DEPTH[0] and (hosts(list(args)) or hosts(list(kwargs.values()))):
            raise TypeError(f"cupy.{func.__name__}: Unsupported type {_np.ndarray} (a numpy array among CuPy "
                            "arrays: CuPy takes device arrays and scalars; move it with cupy.asarray)")
        with _internal(), _graphs.quiet():
            result = super().__array_function__(func, types, args, kwargs)
        wrapped = _rewrap(result)
        if _graphs.recording():
            def again():
                _graphs.copy_back(wrapped, _np.ndarray.__array_function__(self, func, types, args, kwargs))
            _graphs.record(again)
        return wrapped

    for _name in ("astype", "copy", "reshape", "ravel", "flatten", "take", "repeat", "argmax", "argmin", "cumsum",
                  "dot", "round", "__getitem__"):
        locals()[_name] = _method(_name)
    for _name in ("fill", "__setitem__", "sort"):
        locals()[_name] = _method(_name, in_place=True)
    del _name

    def set(self, arr, stream=None):
        from .cuda import _current
        import builtins
        if builtins.any(st._capturing for st in _current):
            raise RuntimeError("cupy stand-in: ndarray.set (a host-to-device copy) while a stream captures")
        _SETS.append(_np.array(arr))
        self[...] = arr
    def get(self, stream=None):
        _refuse_read("ndarray.get")
        return _np.asarray(self).view(_np.ndarray).copy()

    # a host read of a device value goes through get() in CuPy (cupy/_core/core.pyx: __float__ is
    # float(self.get()), item and tolist likewise): refused while the current stream captures
    for _name in ("__float__", "__int__", "__index__", "__bool__", "item", "tolist"):
        locals()[_name] = _host_read(_name)
    del _name

    @property
    def data(self):
        _graphs.keep(self)
        class _M: ptr = _root(self).ctypes.data  # the allocation's start, as MemoryPointer.mem.ptr
        class _D: ptr = self.ctypes.data; device_id = 0; mem = _M
        return _D()
def _wrap(a): return _np.asarray(a).view(ndarray)
def asarray(a, dtype=None):
    if not isinstance(a, ndarray):
        _graphs.refuse_host_copy(f"cupy.asarray of a {type(a).__name__}")
    return _wrap(_np.asarray(a, dtype=dtype))


def _filled(array, value):
    if _graphs.recording():  # a memset node: each launch fills again
        _graphs.record(lambda: array.view(_np.ndarray).fill(value))
    return array
def empty_like(a, *k, **kw): return _wrap(_np.empty_like(a, *k, **kw))
def zeros_like(a, *k, **kw): return _filled(_wrap(_np.zeros_like(_graphs.plain(a), *k, **kw)), 0)
def empty(*a, **k): return _wrap(_np.empty(*a, **k))
def full(shape, value, dtype=None): return _filled(_wrap(_np.full(shape, value, dtype=dtype)), value)
def zeros(*a, **k): return _filled(_wrap(_np.zeros(*a, **k)), 0)
def ones(*a, **k): return _filled(_wrap(_np.ones(*a, **k)), 1)
def ascontiguousarray(a): return _wrap(_np.ascontiguousarray(a))
def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):  # a device array through get(), as CuPy's
    return a.get() if isinstance(a, ndarray) else _np.asarray(a, order=order)
def matmul(a, b): return _wrap(_np.matmul(a, b))
_CALLS = []  # (kernel name expression, [argument type tags]) per launch
_SETS = []  # host arrays written into device arrays with ndarray.set


def _tag(value):
    """What a kernel argument is, as the parameter types nvcc compiles are compared with it. As CuPy's ``_pointer``
    (``cupy/cuda/function.pyx``): a cupy.ndarray is a pointer; a numpy.ndarray of size one goes by value; a larger one
    is refused."""
    if isinstance(value, ndarray):
        return f"pointer to {value.dtype.name}"
    if isinstance(value, _np.ndarray):
        if value.size != 1:
            raise TypeError(f"You are trying to pass a numpy.ndarray of shape {value.shape} as a kernel parameter. "
                            "Only numpy.ndarrays of size one can be passed by value. If you meant to pass a pointer "
                            "to __global__ memory, you need to pass a cupy.ndarray instead.")
        return value.dtype.name  # by value, as a scalar of its dtype: a pointer parameter fails the PTX check
    return {_np.uint64: "uint64", _np.int64: "int64", _np.int32: "int32", _np.float64: "float64",
            _np.float32: "float32"}.get(type(value), f"Python {type(value).__name__}")


class RawModule:
    def __init__(self, *, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=None):
        # as cupy/_core/raw.pyx's typed keyword-only __init__ (str code, tuple options): what Cython refuses
        for argument, value, kind in (("code", code, str), ("path", path, str), ("options", options, tuple)):
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"Argument '{argument}' has incorrect type (expected {kind.__name__}, got "
                                f"{type(value).__name__})")
        if (code is None) == (path is None):
            raise TypeError("Exactly one of `code` and `path` keyword arguments must be given.")
        self.code, self.options = code, options
    def compile(self): pass
    def get_function(self, name):
        def launch(grid, block, args):
            _CALLS.append((name, [_tag(a) for a in args]))
            with _internal():
                _kernels.run(name, grid, args)  # what the kernel computes (cupy/_kernels.py)
            if _graphs.recording():
                _graphs.record(lambda: _kernels.run(name, grid, args))
        return launch
class _Pool:
    def malloc(self, n): return None
    def used_bytes(self): return 0
    def total_bytes(self): return 0
    def free_all_blocks(self): pass
_pool = _Pool()
def get_default_memory_pool(): return _pool

for _name in sorted(_NAMES):
    _obj = getattr(_np, _name, None)
    if callable(_obj) and not isinstance(_obj, type):
        if _name in ("asarray", "empty_like", "zeros_like", "empty", "zeros", "ones", "full", "ascontiguousarray", "asnumpy",
                     "matmul"):
            continue
        globals()[_name] = _wrapfn(_obj) if not isinstance(_obj, _np.ufunc) else _obj
del _name, _obj


_einsum = einsum  # noqa: F821 -- numpy's, wrapped above
_argsort = argsort  # noqa: F821 -- numpy's, wrapped above


_THRUST_DTYPES = {_np.dtype(t) for t in (_np.int8, _np.uint8, _np.int16, _np.uint16, _np.int32, _np.uint32, _np.int64,
                                          _np.uint64, _np.float16, _np.float32, _np.float64, _np.complex64,
                                          _np.complex128, _np.bool_)}  # no bfloat16


def argsort(a, axis=-1, kind=None):
    """CuPy's argsort is always stable (thrust), takes kind None or 'stable' only, and sorts a 0-d array as one of
    one element (cupy/_core/core.pyx ndarray.argsort, _check_kind_sort; _routines_sorting.pyx, atleast_1d)."""
    if kind is not None and kind != "stable":
        raise ValueError("kind can only be None or 'stable'")
    if _np.dtype(a.dtype) not in _THRUST_DTYPES:  # cupy/cuda/thrust.pyx argsort, common._get_dtype_id
        raise NotImplementedError(f"Sorting arrays with dtype '{a.dtype}' is not supported")
    return _argsort(a if _np.ndim(a) else _np.reshape(a, (1,)), axis=axis, kind="stable")


def einsum(subscripts, *operands, **kwargs):
    """CuPy's einsum contracts each pair of operands with cupy.matmul, through its cuBLAS bindings, which refuse while
    the stream captures (cupy/linalg/_einsum.py, reduced_binary_einsum); a pair without a contraction multiplies."""
    inputs, _, output = subscripts.replace(" ", "").partition("->")
    specs = inputs.split(",")
    contracted = {c for c in "".join(specs) if [c in s for s in specs].count(True) > 1 and c not in output}
    if contracted and operands[0].dtype.kind in "fcV":
        cuda.cublas._setStream(cuda.device.get_cublas_handle())
    return _einsum(subscripts, *operands, **kwargs)

for _name in ("asarray", "array", "asanyarray"):
    setattr(_np, _name, _implicit_conversion_refused(getattr(_np, _name)))
del _name
