"""CuPy's cuBLAS bindings (``cupy_backends/cuda/libs/cublas.pyx``): GEMMs as cuBLAS's documentation defines
them (column-major, op(A) and op(B), leading dimensions, strides between the matrices of a batch, alpha and beta
read through host pointers), computed with numpy on the memory the pointers name: what gpugrad passes is
checked by what comes out. As in CuPy 14, ``setStream`` and every routine (which binds the handle to the
current stream first, ``_setStream``) raise NotImplementedError while that stream captures; CuPy has no
``setWorkspace``."""
import ctypes as _ctypes

import numpy as _np

CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_64F, CUBLAS_COMPUTE_32F_FAST_TF32 = 68, 70, 77
CUBLAS_POINTER_MODE_HOST = 0
_GEMMS = []  # (function, compute type) per call


def _dtype(code):
    if code == 14:
        import ml_dtypes
        return _np.dtype(ml_dtypes.bfloat16)
    return _np.dtype({0: _np.float32, 1: _np.float64, 2: _np.float16}[code])


def _matrix(pointer, code, rows, cols, ld, op, writeable=False):
    """The column-major ``rows`` x ``cols`` matrix op(X) stored at ``pointer`` with leading dimension ``ld``."""
    dtype = _dtype(code)
    stored_rows, stored_cols = (rows, cols) if op == CUBLAS_OP_N else (cols, rows)
    assert ld >= max(1, stored_rows), f"leading dimension {ld} < {stored_rows} rows"
    count = ld * (stored_cols - 1) + stored_rows
    memory = _np.frombuffer((_ctypes.c_char * (count * dtype.itemsize)).from_address(pointer), dtype=dtype)
    stored = _np.lib.stride_tricks.as_strided(memory, (stored_rows, stored_cols), (dtype.itemsize, ld * dtype.itemsize),
                                             writeable=writeable)
    return stored if op == CUBLAS_OP_N else stored.T


def _operand(matrix, compute):
    """The operand as the compute type reads it, in float64: TF32 keeps 10 bits of float32's mantissa (nearest)."""
    if compute == CUBLAS_COMPUTE_32F_FAST_TF32 and matrix.dtype == _np.float32:
        bits = _np.ascontiguousarray(matrix).view(_np.uint32)
        bits = (bits + _np.uint32(0x0FFF) + ((bits >> _np.uint32(13)) & _np.uint32(1))) & _np.uint32(0xFFFFE000)
        return bits.view(_np.float32).astype(_np.float64)
    return matrix.astype(_np.float64)


def _scalar(pointer, compute):
    return (_ctypes.c_double if compute == CUBLAS_COMPUTE_64F else _ctypes.c_float).from_address(pointer).value


def gemmEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, compute, algo):
    gemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C, Ctype,
                         ldc, 0, 1, compute, algo)
    _GEMMS[-1] = ("gemmEx", compute)


def gemmStridedBatchedEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB,
                         beta, C, Ctype, ldc, strideC, batchCount, compute, algo):
    _setStream(handle)
    _GEMMS.append(("gemmStridedBatchedEx", compute))
    _gemm(transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C, Ctype, ldc,
          strideC, batchCount, compute)


def _gemm(transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta, C, Ctype, ldc,
          strideC, batchCount, compute):
    a_size, b_size, c_size = (_dtype(code).itemsize for code in (Atype, Btype, Ctype))
    alpha, beta = _scalar(alpha, compute), _scalar(beta, compute)
    for i in range(batchCount):
        # NOTE: a warm-up GEMM reads scratch memory (np.empty's bits: a float32 signalling NaN warns when widened,
        # which made a test that turns warnings into errors fail now and then); what a GEMM computes is checked
        # by what comes out
        with _np.errstate(all="ignore"):
            a = _operand(_matrix(A + i * strideA * a_size, Atype, m, k, lda, transa), compute)
            b = _operand(_matrix(B + i * strideB * b_size, Btype, k, n, ldb, transb), compute)
            c = _matrix(C + i * strideC * c_size, Ctype, m, n, ldc, CUBLAS_OP_N, writeable=True)
            c[...] = alpha * (a @ b) + (beta * c.astype(_np.float64) if beta else 0)


def setPointerMode(handle, mode): assert mode == CUBLAS_POINTER_MODE_HOST
def create(): return 1
def destroy(h): pass


def setStream(handle, stream):
    from .runtime import streamIsCapturing
    if streamIsCapturing(stream):
        raise NotImplementedError("calling cuBLAS API during stream capture is currently unsupported")


def _setStream(handle):
    from . import get_current_stream
    setStream(handle, get_current_stream().ptr)
