"""cuBLAS's public C API through ctypes, for the GEMMs of a captured step (``gpugrad.capture.cuda``).

Why not CuPy's bindings: in CuPy 14 (``cupy_backends/cuda/libs/cublas.pyx``) ``setStream``, and every
routine through ``_setStream`` (``gemmEx``, ``gemmStridedBatchedEx``), raises ``NotImplementedError``
("calling cuBLAS API during stream capture is currently unsupported", cupy/cupy#6290) while the current
stream captures. cuBLAS itself supports capture ("CUDA Graphs Support" in its documentation): a GEMM with
alpha and beta in host memory (``CUBLAS_POINTER_MODE_HOST``) becomes graph nodes with the scalars baked
in. What keeps it safe here:

- the library is the very libcublas CuPy loaded: ``cuda.pathfinder.load_nvidia_dynamic_lib`` (what CuPy
  itself calls before importing its cuBLAS module) caches what it loaded and returns its path, and a
  second ``dlopen`` of a loaded library returns the same one;
- a capture's handle is its own: made here, bound once to the capture stream (``cublasSetStream``), then
  given a workspace from the capture's memory pool (``cublasSetWorkspace``; after the stream, since
  binding a stream resets the workspace), so cuBLAS allocates nothing while the stream captures, and
  never rebound; the GEMMs below set no stream (unlike CuPy's) and read the handle's;
- each GEMM shape runs once on that handle before the capture begins (``GraphTape.start``), so cuBLAS's
  heuristics and the lazy loading of its kernels happen outside the graph.

Only what gpugrad calls is bound; each function takes its arguments in the order of CuPy's binding of the
same name, so the device object's GEMM calls either module the same way.
"""
from __future__ import annotations

import ctypes
import functools

_void, _int, _size, _int64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_longlong
# C name -> argument types, as cublas_api.h declares them (enums are int, handles and streams pointers)
_SIGNATURES = {
    "cublasCreate_v2": [ctypes.POINTER(_void)],
    "cublasDestroy_v2": [_void],
    "cublasSetStream_v2": [_void, _void],
    "cublasSetWorkspace_v2": [_void, _void, _size],
    "cublasSetPointerMode_v2": [_void, _int],
    "cublasGemmEx": [_void, _int, _int, _int, _int, _int, _void, _void, _int, _int, _void, _int, _int, _void,
                     _void, _int, _int, _int, _int],
    "cublasGemmStridedBatchedEx": [_void, _int, _int, _int, _int, _int, _void, _void, _int, _int, _int64, _void,
                                   _int, _int, _int64, _void, _void, _int, _int, _int64, _int, _int, _int],
}


class CublasError(RuntimeError):
    """A cuBLAS call returned a status other than CUBLAS_STATUS_SUCCESS."""


@functools.cache
def _library():
    from cuda import pathfinder  # CuPy's own dependency, which located and loaded libcublas for it
    loaded = pathfinder.load_nvidia_dynamic_lib("cublas")
    if loaded.abs_path is None:
        raise CublasError("gpugrad: cuda.pathfinder loaded libcublas but cannot say from where; the GEMMs of a "
                          "captured step need its path (run the step eagerly: gpugrad.compile(fn, enabled=False))")
    library = ctypes.CDLL(loaded.abs_path)
    for name, argtypes in _SIGNATURES.items():
        function = getattr(library, name)
        function.argtypes, function.restype = argtypes, _int
    return library


def _call(name, *args):
    status = getattr(_library(), name)(*args)
    if status:
        raise CublasError(f"{name} failed with cublasStatus_t {status}")


def create() -> int:
    handle = _void()
    _call("cublasCreate_v2", ctypes.byref(handle))
    return handle.value


def destroy(handle: int) -> None:
    _call("cublasDestroy_v2", handle)


def setStream(handle: int, stream: int) -> None:  # noqa: N802 -- cuBLAS's and CuPy's name
    _call("cublasSetStream_v2", handle, stream)


def setWorkspace(handle: int, workspace: int, size: int) -> None:  # noqa: N802
    _call("cublasSetWorkspace_v2", handle, workspace, size)


def setPointerMode(handle: int, mode: int) -> None:  # noqa: N802
    _call("cublasSetPointerMode_v2", handle, mode)


def gemmEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,  # noqa: N802,N803
           computeType, algo):
    _call("cublasGemmEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
          computeType, algo)


def gemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb,  # noqa: N802,N803
                         strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo):
    _call("cublasGemmStridedBatchedEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb,
          strideB, beta, C, Ctype, ldc, strideC, batchCount, computeType, algo)
