// Softmax + cross-entropy, one warp per row: the row's loss and its dlogits in one pass.
//   loss[r]    = log(sum_j exp(x_j - m)) - (x_label - m),   m = max_j x_j
//   dlogits[r] = (softmax(x) - onehot(label)) / N
// Stable for huge logits: every exponent is <= 0. A label outside [0, C) makes its row's loss NaN.
#include "common.cuh"

template <typename T> struct Accum { typedef float type; };
template <> struct Accum<double> { typedef double type; };

template <typename A> __device__ __forceinline__ A warp_max(A v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}
template <typename A> __device__ __forceinline__ A warp_sum(A v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

template <typename T, typename L>
__global__ void softmax_xent_fwd(const T* __restrict__ logits, const L* __restrict__ labels,
                                 typename Accum<T>::type* __restrict__ row_loss, T* __restrict__ dlogits,
                                 long long rows, long long cols) {
    typedef typename Accum<T>::type A;
    const int lane = threadIdx.x & 31;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long r = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
        const T* x = logits + r * cols;
        A m = -(A)__longlong_as_double(0x7FF0000000000000LL);  // -inf (NVRTC has no math.h macros)
        for (long long j = lane; j < cols; j += 32) m = fmax(m, (A)load(x, j));
        m = warp_max(m);
        A s = (A)0;
        for (long long j = lane; j < cols; j += 32) s += exp((A)load(x, j) - m);
        s = warp_sum(s);
        const long long label = (long long)labels[r];
        if (label < 0 || label >= cols) {  // an out-of-range label poisons its row: NaN loss, NaN gradient
            const A nan = (A)__longlong_as_double(0x7FF8000000000000LL);
            for (long long j = lane; j < cols; j += 32) store(dlogits + r * cols, j, nan);
            if (lane == 0) row_loss[r] = nan;
            continue;
        }
        const A inv_n = (A)1 / (A)rows;
        const A inv_s = (A)1 / s;
        for (long long j = lane; j < cols; j += 32) {
            A prob = exp((A)load(x, j) - m) * inv_s;
            store(dlogits + r * cols, j, (prob - (j == label ? (A)1 : (A)0)) * inv_n);
        }
        if (lane == 0) row_loss[r] = log(s) - ((A)load(x, label) - m);
    }
}

template __global__ void softmax_xent_fwd<float, long long>(const float*, const long long*, float*, float*, long long, long long);
template __global__ void softmax_xent_fwd<double, long long>(const double*, const long long*, double*, double*, long long, long long);
#ifndef GPUGRAD_NO_HALF
template __global__ void softmax_xent_fwd<__half, long long>(const __half*, const long long*, float*, __half*, long long, long long);
#endif
template __global__ void softmax_xent_fwd<float, int>(const float*, const int*, float*, float*, long long, long long);
template __global__ void softmax_xent_fwd<double, int>(const double*, const int*, double*, double*, long long, long long);
#ifndef GPUGRAD_NO_HALF
template __global__ void softmax_xent_fwd<__half, int>(const __half*, const int*, float*, __half*, long long, long long);
#endif
