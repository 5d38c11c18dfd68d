// The epilogue of a linear layer: y = act(z + bias) in place after the GEMM, and its backward
// grad_pre = dy * act'(y) together with per-chunk column sums for the bias gradient.
#include "common.cuh"

template <typename T> struct Accum { typedef float type; };
template <> struct Accum<double> { typedef double type; };

template <typename T>
__global__ void bias_act_fwd(T* __restrict__ z, const T* __restrict__ bias, long long rows, long long cols,
                             int has_bias, int act, double p) {
    typedef typename Compute<T>::type C;
    long long n = rows * cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        C v = load(z, i);
        if (has_bias) v = v + load(bias, i % cols);
        store(z, i, act_forward<C>(act, v, (C)p));
    }
}

// Grid: (ceil(cols / blockDim.x), chunks). Each thread owns one column of one chunk of rows, so a
// warp reads consecutive columns (coalesced) and sums its column without atomics (deterministic).
template <typename T>
__global__ void bias_act_bwd(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ grad_pre,
                             typename Accum<T>::type* __restrict__ partial, long long rows, long long cols,
                             long long rows_per_chunk, int act, double p) {
    typedef typename Compute<T>::type C;
    typedef typename Accum<T>::type A;
    long long col = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (col >= cols) return;
    long long begin = blockIdx.y * rows_per_chunk;
    long long end = min(rows, begin + rows_per_chunk);
    A sum = (A)0;
    for (long long r = begin; r < end; ++r) {
        long long i = r * cols + col;
        C g = act_backward<C>(act, load(y, i), load(gy, i), (C)p);
        store(grad_pre, i, g);
        sum += (A)g;
    }
    partial[blockIdx.y * cols + col] = sum;
}

template __global__ void bias_act_fwd<float>(float*, const float*, long long, long long, int, int, double);
template __global__ void bias_act_fwd<double>(double*, const double*, long long, long long, int, int, double);
#ifndef GPUGRAD_NO_HALF
template __global__ void bias_act_fwd<__half>(__half*, const __half*, long long, long long, int, int, double);
#endif
template __global__ void bias_act_bwd<float>(const float*, const float*, float*, float*, long long, long long, long long, int, double);
template __global__ void bias_act_bwd<double>(const double*, const double*, double*, double*, long long, long long, long long, int, double);
#ifndef GPUGRAD_NO_HALF
template __global__ void bias_act_bwd<__half>(const __half*, const __half*, __half*, float*, long long, long long, long long, int, double);
#endif
