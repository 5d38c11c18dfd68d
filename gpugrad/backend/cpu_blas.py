"""Level-1 BLAS (axpy, axpby) from numpy's own OpenBLAS, for the CPU optimizers' in-place updates.

numpy has no scaled add: ``p -= lr * g`` is two passes over memory, one of them into a
temporary, where BLAS's axpy is one pass, and OpenBLAS spreads it over the cores. On a 1M-element
float32 parameter that is 55 us against 195 us (2 cores, bench/RESULTS.md).

The library is the one numpy's wheels bundle (scipy-openblas, 64-bit integers, symbols named
``scipy_cblas_saxpy64_``); it is already loaded by numpy, so this adds no dependency and no second
thread pool. Anything else (numpy built against MKL or Accelerate, an unknown layout, a failed
self-test, ``GPUGRAD_CPU_BLAS=0`` in the environment) leaves ``blas()`` returning None, and the
callers use plain numpy.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_PREFIX = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}
# NOTE: below this many elements numpy's two passes beat the ctypes call (measured here: 1.9 against
# 1.3 us at 1000 elements, 2.9 against 3.6 us at 16000).
MIN_ELEMENTS = 8192
_unset = object()
_cached = _unset


class Blas:
    """In-place ``y = alpha * x + beta * y`` on contiguous float32/float64 arrays of one dtype."""

    def __init__(self, library: ctypes.CDLL, prefix: str, suffix: str):
        self.path = library._name
        self._axpy, self._axpby = {}, {}
        for dtype, letter in _PREFIX.items():
            real = ctypes.c_float if letter == "s" else ctypes.c_double
            n = ctypes.c_int64  # suffix "64_": the ILP64 interface
            axpy = getattr(library, f"{prefix}cblas_{letter}axpy{suffix}")
            axpy.argtypes = [n, real, ctypes.c_void_p, n, ctypes.c_void_p, n]
            axpy.restype = None
            axpby = getattr(library, f"{prefix}cblas_{letter}axpby{suffix}")
            axpby.argtypes = [n, real, ctypes.c_void_p, n, real, ctypes.c_void_p, n]
            axpby.restype = None
            self._axpy[dtype], self._axpby[dtype] = axpy, axpby
        # NOTE: gpugrad's C extension calls the same functions without ctypes' argument conversion
        # (about 1.5 us less per call); without the extension, ctypes calls them.
        from ..autograd import _engine
        self._c_axpby = None
        if _engine is not None:
            address = [ctypes.cast(table[dtype], ctypes.c_void_p).value
                       for table in (self._axpy, self._axpby) for dtype in _PREFIX]
            _engine.set_blas(*address)
            self._c_axpby = _engine.axpby

    @staticmethod
    def applies(x, y) -> bool:
        """Large enough to pay for the call, both C-contiguous, writeable y, the same shape and a
        dtype BLAS takes."""
        return y.size >= MIN_ELEMENTS and (x.dtype is y.dtype or x.dtype == y.dtype) and x.dtype in _PREFIX \
            and x.shape == y.shape and x.flags.c_contiguous and y.flags.c_contiguous and y.flags.writeable

    def axpby(self, alpha: float, x, beta: float, y) -> None:
        """y = alpha * x + beta * y, in place. The caller has checked ``applies(x, y)``."""
        if self._c_axpby is not None:
            self._c_axpby(alpha, x, beta, y)
            return
        n = y.size
        if not n:
            return
        if beta == 1:  # axpy is the multithreaded one in OpenBLAS
            self._axpy[y.dtype](n, alpha, _address(x), 1, _address(y), 1)
        else:
            self._axpby[y.dtype](n, alpha, _address(x), 1, beta, _address(y), 1)


def _address(array) -> int:
    # NOTE: a quarter of the time of array.ctypes.data, which builds a Python helper object each call.
    if array.flags.writeable:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    return array.ctypes.data


def blas() -> Blas | None:
    """numpy's bundled OpenBLAS, checked once per process, or None."""
    global _cached
    if _cached is _unset:
        _cached = None if os.environ.get("GPUGRAD_CPU_BLAS", "1") == "0" else _find()
    return _cached


def _find() -> Blas | None:
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except Exception:  # numpy < 1.25 has no mode="dicts"
        return None
    name = str(config.get("name", ""))
    # NOTE: only the layout numpy's own wheels use is trusted: a wrong integer width would not fail
    # cleanly, it would corrupt memory.
    if name != "scipy-openblas" or "USE64BITINT" not in str(config.get("openblas configuration", "")):
        return None
    here = os.path.dirname(os.path.abspath(np.__file__))
    candidates = []
    for folder in (os.path.join(here, os.pardir, "numpy.libs"), os.path.join(here, ".dylibs")):
        candidates += sorted(glob.glob(os.path.join(folder, "*scipy_openblas64*")))
    for path in candidates:
        path = os.path.realpath(path)
        try:
            found = Blas(ctypes.CDLL(path), "scipy_", "64_")
        except (OSError, AttributeError):
            continue
        if _self_test(found):
            return found
    return None


def _self_test(candidate: Blas) -> bool:
    for dtype in _PREFIX:
        x = np.arange(1, 40, dtype=dtype)
        y = np.linspace(-3, 3, 39, dtype=dtype)
        want = dtype.type(0.5) * x + dtype.type(0.25) * y
        candidate.axpby(0.5, x, 0.25, y)
        if not np.allclose(y, want, rtol=1e-6, atol=0):
            return False
        candidate.axpby(-2.0, x, 1.0, y)
        if not np.allclose(y, want - 2 * x, rtol=1e-6, atol=0):
            return False
    return True
