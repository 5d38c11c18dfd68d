"""What the stand-in libcublas (``libcublas.c``) does with the calls it forwards, as cuBLAS's documentation
defines them: a handle is bound to one stream (``cublasSetStream``, which also drops the handle's workspace, as
cuBLAS resets it to its default there) and runs its GEMMs there; a GEMM on a stream that captures is recorded into
the graph (cupy/_graphs.py) and, run without a workspace of the user's, fails with CUBLAS_STATUS_NOT_SUPPORTED
(the stand-in is stricter than cuBLAS here, which then allocates while capturing). ``CALLS`` lists (C function,
handle) per call, so tests count how often a handle is bound."""
import ctypes
import itertools
import sys

CALLS = []
HANDLES = {}  # handle -> {"stream": pointer, "workspace": (pointer, size) or None, "pointer_mode": int}
_ids = itertools.count(0x5000)
_keep = []  # the callbacks: alive as long as the library may call them

_void, _int, _size, _int64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t, ctypes.c_longlong
NOT_INITIALIZED, INVALID_VALUE, NOT_SUPPORTED = 1, 7, 15


def _fail(status, why):
    print(f"stand-in libcublas: {why}", file=sys.stderr)
    return status


def _create(out):
    handle = next(_ids)
    HANDLES[handle] = {"stream": 0, "workspace": None, "pointer_mode": 0}
    out[0] = handle
    CALLS.append(("cublasCreate_v2", handle))
    return 0


def _destroy(handle):
    CALLS.append(("cublasDestroy_v2", handle))
    return 0 if HANDLES.pop(handle, None) is not None else _fail(NOT_INITIALIZED, f"destroy of unknown handle {handle}")


def _set_stream(handle, stream):
    CALLS.append(("cublasSetStream_v2", handle))
    if handle not in HANDLES:
        return _fail(NOT_INITIALIZED, f"cublasSetStream of unknown handle {handle}")
    HANDLES[handle].update(stream=stream or 0, workspace=None)
    return 0


def _set_workspace(handle, pointer, size):
    CALLS.append(("cublasSetWorkspace_v2", handle))
    if handle not in HANDLES or not pointer or size % 256:
        return _fail(INVALID_VALUE, f"cublasSetWorkspace({handle}, {pointer}, {size})")
    HANDLES[handle]["workspace"] = (pointer, size)
    return 0


def _set_pointer_mode(handle, mode):
    CALLS.append(("cublasSetPointerMode_v2", handle))
    if handle not in HANDLES or mode not in (0, 1):
        return _fail(INVALID_VALUE, f"cublasSetPointerMode({handle}, {mode})")
    HANDLES[handle]["pointer_mode"] = mode
    return 0


def _gemm_strided(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C,
                  Ctype, ldc, strideC, batchCount, compute, algo, name="cublasGemmStridedBatchedEx"):
    from cupy import _graphs
    from cupy.cuda import _streams
    from cupy.cuda.cublas import _gemm
    CALLS.append((name, handle))
    state = HANDLES.get(handle)
    if state is None:
        return _fail(NOT_INITIALIZED, f"{name} on unknown handle {handle}")
    if state["pointer_mode"] != 0:
        return _fail(INVALID_VALUE, f"{name}: alpha and beta read as device pointers (pointer mode {state['pointer_mode']})")
    stream = _streams.get(state["stream"])
    args = (transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C, Ctype, ldc,
            strideC, batchCount, compute)
    if stream is not None and stream.is_capturing():
        if state["workspace"] is None:
            return _fail(NOT_SUPPORTED, f"{name} while its stream captures, with no workspace set after the stream")
        _graphs.record(lambda: _gemm(*args))
    _gemm(*args)
    return 0


def _gemm_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, compute, algo):
    return _gemm_strided(handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C, Ctype,
                         ldc, 0, 1, compute, algo, name="cublasGemmEx")


def connect(path):
    """Load the built library and hand it the callbacks; returns its dlopen handle."""
    library = ctypes.CDLL(path)
    types = [
        (ctypes.CFUNCTYPE(_int, ctypes.POINTER(_void)), lambda out: _create(out)),
        (ctypes.CFUNCTYPE(_int, _void), lambda h: _destroy(h or 0)),
        (ctypes.CFUNCTYPE(_int, _void, _void), lambda h, s: _set_stream(h or 0, s or 0)),
        (ctypes.CFUNCTYPE(_int, _void, _void, _size), lambda h, p, n: _set_workspace(h or 0, p or 0, n)),
        (ctypes.CFUNCTYPE(_int, _void, _int), lambda h, mode: _set_pointer_mode(h or 0, mode)),
        (ctypes.CFUNCTYPE(_int, _void, *[_int] * 5, _void, _void, _int, _int, _void, _int, _int, _void, _void,
                          *[_int] * 4),
         lambda h, *a: _gemm_ex(h or 0, *[x or 0 for x in a])),
        (ctypes.CFUNCTYPE(_int, _void, *[_int] * 5, _void, _void, _int, _int, _int64, _void, _int, _int, _int64,
                          _void, _void, _int, _int, _int64, _int, _int, _int),
         lambda h, *a: _gemm_strided(h or 0, *[x or 0 for x in a])),
    ]
    callbacks = [kind(fn) for kind, fn in types]
    _keep.extend(callbacks)
    library.standin_connect(*callbacks)
    return library._handle
