// Layer norm over the last `cols` elements of each row, one warp per row (the formulas of
// gpugrad/ops/normalization.py, the same operations in the same order per element):
//   forward:  mean = sum(x) / cols;  var = sum((x - mean)^2) / cols;  rstd = 1 / sqrt(var + eps)
//             xhat = (x - mean) * rstd;  y = xhat * w + b  (or y = xhat without weight)
//   backward: dxhat = dy * w;  dx = rstd * (dxhat - sum(dxhat) / cols - xhat * sum(dxhat * xhat) / cols)
// Half precision is computed in float; xhat and rstd (what backward needs) are kept in the compute
// type. Three reads and two writes of a row forward, two reads and one write backward, in one launch
// each, where the generic CuPy sequence makes about a dozen passes.
#include "common.cuh"

template <typename C> __device__ __forceinline__ C warp_sum(C v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

template <typename T>
__global__ void layer_norm_fwd(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                               T* __restrict__ y, typename Compute<T>::type* __restrict__ xhat,
                               typename Compute<T>::type* __restrict__ rstd, long long rows, long long cols,
                               double eps) {
    typedef typename Compute<T>::type C;
    const int lane = threadIdx.x & 31;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long r = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
        const T* xr = x + r * cols;
        C sum = (C)0;
        for (long long j = lane; j < cols; j += 32) sum += load(xr, j);
        const C mean = warp_sum(sum) / (C)cols;
        C squares = (C)0;
        for (long long j = lane; j < cols; j += 32) {
            const C d = load(xr, j) - mean;
            squares += d * d;
        }
        const C inv = (C)1 / sqrt(warp_sum(squares) / (C)cols + (C)eps);
        for (long long j = lane; j < cols; j += 32) {
            const C h = (load(xr, j) - mean) * inv;
            xhat[r * cols + j] = h;
            store(y + r * cols, j, w != nullptr ? h * load(w, j) + load(b, j) : h);
        }
        if (lane == 0) rstd[r] = inv;
    }
}

template <typename T>
__global__ void layer_norm_bwd(const T* __restrict__ dy, const typename Compute<T>::type* __restrict__ xhat,
                               const typename Compute<T>::type* __restrict__ rstd, const T* __restrict__ w,
                               T* __restrict__ dx, long long rows, long long cols) {
    typedef typename Compute<T>::type C;
    const int lane = threadIdx.x & 31;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long r = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
        const T* g = dy + r * cols;
        const C* h = xhat + r * cols;
        C sum = (C)0, dot = (C)0;
        for (long long j = lane; j < cols; j += 32) {
            const C d = w != nullptr ? load(g, j) * load(w, j) : load(g, j);
            sum += d;
            dot += d * h[j];
        }
        const C mean_d = warp_sum(sum) / (C)cols, mean_dh = warp_sum(dot) / (C)cols, inv = rstd[r];
        for (long long j = lane; j < cols; j += 32) {
            const C d = w != nullptr ? load(g, j) * load(w, j) : load(g, j);
            store(dx + r * cols, j, inv * (d - mean_d - h[j] * mean_dh));
        }
    }
}

template __global__ void layer_norm_fwd<float>(const float*, const float*, const float*, float*, float*, float*, long long, long long, double);
template __global__ void layer_norm_fwd<double>(const double*, const double*, const double*, double*, double*, double*, long long, long long, double);
template __global__ void layer_norm_bwd<float>(const float*, const float*, const float*, const float*, float*, long long, long long);
template __global__ void layer_norm_bwd<double>(const double*, const double*, const double*, const double*, double*, long long, long long);
#ifndef GPUGRAD_NO_HALF
template __global__ void layer_norm_fwd<__half>(const __half*, const __half*, const __half*, __half*, float*, float*, long long, long long, double);
template __global__ void layer_norm_fwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*, float*, float*, long long, long long, double);
template __global__ void layer_norm_bwd<__half>(const __half*, const float*, const float*, const __half*, __half*, long long, long long);
template __global__ void layer_norm_bwd<__nv_bfloat16>(const __nv_bfloat16*, const float*, const float*, const __nv_bfloat16*, __nv_bfloat16*, long long, long long);
#endif
