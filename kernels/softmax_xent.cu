// Softmax + cross-entropy, one warp per row: the row's loss and its dlogits in two reads of the row.
//   loss[r]    = log(sum_j exp(x_j - m)) - (x_label - m),   m = max_j x_j
//   dlogits[r] = (softmax(x) - onehot(label)) / N
// Pass 1 keeps a running max and a running sum rescaled to it (online softmax); pass 2 writes
// dlogits. Stable for huge logits: every exponent is <= 0. A label outside [0, C) makes its
// row's loss and gradient NaN (checking on the host would stall it every step).
#include "common.cuh"

template <typename T> struct Accum { typedef float type; };
template <> struct Accum<double> { typedef double type; };

template <typename A> __device__ __forceinline__ A minus_infinity() { return -(A)__longlong_as_double(0x7FF0000000000000LL); }
template <typename A> __device__ __forceinline__ A not_a_number() { return (A)__longlong_as_double(0x7FF8000000000000LL); }

// Merge two (max, sum) pairs: sum is relative to max; an empty pair has max = -inf, sum = 0.
template <typename A> __device__ __forceinline__ void merge(A& m, A& s, A m2, A s2) {
    A top = fmax(m, m2);
    if (top == minus_infinity<A>()) return;
    s = (m == top ? s : s * exp(m - top)) + (m2 == top ? s2 : s2 * exp(m2 - top));
    m = top;
}

// The mean of row_loss in one block, in a fixed order (deterministic), rounded once to T.
template <typename T>
__device__ void block_mean(const volatile typename Accum<T>::type* row_loss, T* __restrict__ out, long long rows) {
    // NOTE: volatile: other blocks wrote row_loss during this launch; never read it through the read-only cache.
    typedef typename Accum<T>::type A;
    __shared__ A partial[32];
    A sum = (A)0;
    for (long long i = threadIdx.x; i < rows; i += blockDim.x) sum += row_loss[i];
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x < 32) {
        sum = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : (A)0;
        for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
        if (threadIdx.x == 0) out[0] = static_cast<T>(sum / (A)rows);
    }
}

// The rows, then the mean loss in the same launch: the last block to finish (counted through
// *blocks_done, which it resets to 0) adds up row_loss, so the result does not depend on timing.
template <typename T, typename L>
__global__ void softmax_xent_fwd(const T* __restrict__ logits, const L* __restrict__ labels,
                                 typename Accum<T>::type* __restrict__ row_loss, T* __restrict__ dlogits,
                                 long long rows, long long cols, T* __restrict__ loss, unsigned int* blocks_done) {
    typedef typename Accum<T>::type A;
    const int lane = threadIdx.x & 31;
    const long long warps = (long long)gridDim.x * (blockDim.x >> 5);
    for (long long r = blockIdx.x * (long long)(blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
        const T* x = logits + r * cols;
        T* dx = dlogits + r * cols;
        A m = minus_infinity<A>(), s = (A)0;
        for (long long j = lane; j < cols; j += 32) {
            A v = (A)load(x, j);
            if (v > m) {
                s = (m == minus_infinity<A>() ? (A)0 : s * exp(m - v)) + (A)1;
                m = v;
            } else {
                s += exp(v - m);
            }
        }
        for (int offset = 16; offset > 0; offset >>= 1) {
            A m2 = __shfl_xor_sync(0xffffffffu, m, offset);
            A s2 = __shfl_xor_sync(0xffffffffu, s, offset);
            merge(m, s, m2, s2);
        }
        const long long label = (long long)labels[r];
        if (label < 0 || label >= cols) {
            for (long long j = lane; j < cols; j += 32) store(dx, j, not_a_number<A>());
            if (lane == 0) row_loss[r] = not_a_number<A>();
            continue;
        }
        const A inv_n = (A)1 / (A)rows;
        const A inv_s = (A)1 / s;
        for (long long j = lane; j < cols; j += 32) {
            A prob = exp((A)load(x, j) - m) * inv_s;
            store(dx, j, (prob - (j == label ? (A)1 : (A)0)) * inv_n);
        }
        if (lane == 0) row_loss[r] = log(s) - ((A)load(x, label) - m);
    }
    __shared__ bool last;
    __threadfence();  // this block's row losses are visible before it is counted
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(blocks_done, 1u) == gridDim.x - 1;
    __syncthreads();
    if (last) {
        __threadfence();
        block_mean<T>(row_loss, loss, rows);
        if (threadIdx.x == 0) *blocks_done = 0u;
    }
}

template __global__ void softmax_xent_fwd<float, long long>(const float*, const long long*, float*, float*, long long, long long, float*, unsigned int*);
template __global__ void softmax_xent_fwd<double, long long>(const double*, const long long*, double*, double*, long long, long long, double*, unsigned int*);
template __global__ void softmax_xent_fwd<float, int>(const float*, const int*, float*, float*, long long, long long, float*, unsigned int*);
template __global__ void softmax_xent_fwd<double, int>(const double*, const int*, double*, double*, long long, long long, double*, unsigned int*);
#ifndef GPUGRAD_NO_HALF
template __global__ void softmax_xent_fwd<__half, long long>(const __half*, const long long*, float*, __half*, long long, long long, __half*, unsigned int*);
template __global__ void softmax_xent_fwd<__nv_bfloat16, long long>(const __nv_bfloat16*, const long long*, float*, __nv_bfloat16*, long long, long long, __nv_bfloat16*, unsigned int*);
template __global__ void softmax_xent_fwd<__half, int>(const __half*, const int*, float*, __half*, long long, long long, __half*, unsigned int*);
template __global__ void softmax_xent_fwd<__nv_bfloat16, int>(const __nv_bfloat16*, const int*, float*, __nv_bfloat16*, long long, long long, __nv_bfloat16*, unsigned int*);
#endif
