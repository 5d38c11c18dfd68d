/* A stand-in for libcublas, holding only the entry points gpugrad/cuda/cublas.py binds, each with the parameter
   types cublas_api.h declares: every call hands its arguments, as C received them, to the Python stand-in
   (cuda/pathfinder/_libcublas.py), which does what cuBLAS documents. Built with the system's C compiler. */
#include <stddef.h>

typedef int (*create_fn)(void **);
typedef int (*destroy_fn)(void *);
typedef int (*set_stream_fn)(void *, void *);
typedef int (*set_workspace_fn)(void *, void *, size_t);
typedef int (*set_pointer_mode_fn)(void *, int);
typedef int (*gemm_ex_fn)(void *, int, int, int, int, int, const void *, const void *, int, int, const void *, int,
                          int, const void *, void *, int, int, int, int);
typedef int (*gemm_strided_fn)(void *, int, int, int, int, int, const void *, const void *, int, int, long long,
                               const void *, int, int, long long, const void *, void *, int, int, long long, int, int,
                               int);

static create_fn py_create;
static destroy_fn py_destroy;
static set_stream_fn py_set_stream;
static set_workspace_fn py_set_workspace;
static set_pointer_mode_fn py_set_pointer_mode;
static gemm_ex_fn py_gemm_ex;
static gemm_strided_fn py_gemm_strided;

void standin_connect(create_fn a, destroy_fn b, set_stream_fn c, set_workspace_fn d, set_pointer_mode_fn e,
                     gemm_ex_fn f, gemm_strided_fn g) {
    py_create = a; py_destroy = b; py_set_stream = c; py_set_workspace = d; py_set_pointer_mode = e;
    py_gemm_ex = f; py_gemm_strided = g;
}

int cublasCreate_v2(void **handle) { return py_create(handle); }
int cublasDestroy_v2(void *handle) { return py_destroy(handle); }
int cublasSetStream_v2(void *handle, void *stream) { return py_set_stream(handle, stream); }
int cublasSetWorkspace_v2(void *handle, void *workspace, size_t size) {
    return py_set_workspace(handle, workspace, size);
}
int cublasSetPointerMode_v2(void *handle, int mode) { return py_set_pointer_mode(handle, mode); }
int cublasGemmEx(void *handle, int transa, int transb, int m, int n, int k, const void *alpha, const void *A,
                 int Atype, int lda, const void *B, int Btype, int ldb, const void *beta, void *C, int Ctype, int ldc,
                 int computeType, int algo) {
    return py_gemm_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
                      computeType, algo);
}
int cublasGemmStridedBatchedEx(void *handle, int transa, int transb, int m, int n, int k, const void *alpha,
                               const void *A, int Atype, int lda, long long strideA, const void *B, int Btype, int ldb,
                               long long strideB, const void *beta, void *C, int Ctype, int ldc, long long strideC,
                               int batchCount, int computeType, int algo) {
    return py_gemm_strided(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB,
                           beta, C, Ctype, ldc, strideC, batchCount, computeType, algo);
}
