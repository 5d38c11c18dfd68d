// The epilogue of a linear layer: y = act(z + bias) in place after the GEMM, and its backward
// grad_pre = dy * act'(y) with the bias gradient (the column sums of grad_pre) in the same pass:
// bias_act_bwd writes per-chunk column sums, column_sum adds the chunks (deterministic, no atomics).
#include "common.cuh"

template <typename T> struct Accum { typedef float type; };
template <> struct Accum<double> { typedef double type; };

// A grid-stride loop over 16-byte packs of z (four in flight per thread) when rows are a whole
// number of packs, element by element otherwise. The bias pack comes from cache.
template <typename T>
__global__ void bias_act_fwd(T* __restrict__ z, const T* __restrict__ bias, long long rows, long long cols,
                             int has_bias, int act, double p) {
    typedef typename Compute<T>::type C;
    const int V = 16 / sizeof(T);
    const long long tid = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    if (cols % V == 0 && aligned16(z, has_bias ? bias : nullptr)) {
        Pack<T>* zs = reinterpret_cast<Pack<T>*>(z);
        const Pack<T>* bs = reinterpret_cast<const Pack<T>*>(bias);
        const long long packs = rows * cols / V, per_row = cols / V;
        for (long long base = tid; base < packs; base += 4 * stride) {
            Pack<T> a[4];
#pragma unroll
            for (int u = 0; u < 4; ++u)
                if (base + u * stride < packs) a[u] = zs[base + u * stride];
#pragma unroll
            for (int u = 0; u < 4; ++u) {
                const long long i = base + u * stride;
                if (i >= packs) continue;
                Pack<T> b;
                if (has_bias) b = bs[i % per_row];
#pragma unroll
                for (int k = 0; k < V; ++k) {
                    C v = static_cast<C>(a[u].v[k]);
                    if (has_bias) v = v + static_cast<C>(b.v[k]);
                    a[u].v[k] = static_cast<T>(act_forward<C>(act, v, (C)p));
                }
                zs[i] = a[u];
            }
        }
        return;
    }
    for (long long i = tid; i < rows * cols; i += stride) {
        C v = load(z, i);
        if (has_bias) v = v + load(bias, i % cols);
        store(z, i, act_forward<C>(act, v, (C)p));
    }
}

// Grid: (ceil(cols / (V * blockDim.x)), chunks). Each thread owns V adjacent columns of one chunk
// of rows: a warp reads 32 consecutive packs (coalesced) and keeps V running sums in registers.
// V = 1 when the row length or alignment rules out 16-byte packs.
template <typename T, int V>
__device__ void bias_act_bwd_cols(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ grad_pre,
                                  typename Accum<T>::type* __restrict__ partial, long long rows, long long cols,
                                  long long rows_per_chunk, int act, double p) {
    typedef typename Compute<T>::type C;
    typedef typename Accum<T>::type A;
    const long long col = (blockIdx.x * (long long)blockDim.x + threadIdx.x) * V;
    if (col >= cols) return;
    const long long begin = blockIdx.y * rows_per_chunk;
    const long long end = min(rows, begin + rows_per_chunk);
    A sum[V];
#pragma unroll
    for (int k = 0; k < V; ++k) sum[k] = (A)0;
#pragma unroll 2
    for (long long r = begin; r < end; ++r) {
        const long long i = r * cols + col;
        if (V > 1) {
            Pack<T> ys = *reinterpret_cast<const Pack<T>*>(y + i);
            Pack<T> gs = *reinterpret_cast<const Pack<T>*>(gy + i);
#pragma unroll
            for (int k = 0; k < V; ++k) {
                C g = act_backward<C>(act, static_cast<C>(ys.v[k]), static_cast<C>(gs.v[k]), (C)p);
                gs.v[k] = static_cast<T>(g);
                sum[k] += (A)static_cast<C>(gs.v[k]);
            }
            *reinterpret_cast<Pack<T>*>(grad_pre + i) = gs;
        } else {
            C g = act_backward<C>(act, load(y, i), load(gy, i), (C)p);
            store(grad_pre, i, g);
            sum[0] += (A)static_cast<C>(grad_pre[i]);
        }
    }
#pragma unroll
    for (int k = 0; k < V; ++k) partial[blockIdx.y * cols + col + k] = sum[k];
}

template <typename T>
__global__ void bias_act_bwd(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ grad_pre,
                             typename Accum<T>::type* __restrict__ partial, long long rows, long long cols,
                             long long rows_per_chunk, int act, double p, int vectorized) {
    if (vectorized)
        bias_act_bwd_cols<T, 16 / sizeof(T)>(y, gy, grad_pre, partial, rows, cols, rows_per_chunk, act, p);
    else
        bias_act_bwd_cols<T, 1>(y, gy, grad_pre, partial, rows, cols, rows_per_chunk, act, p);
}

// Small layers in one launch: a block of 32 x 8 threads owns 32 columns and every row; each of
// its 8 row groups sums its rows, shared memory adds the 8 sums, and the block writes grad_bias.
template <typename T>
__global__ void bias_act_bwd_small(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ grad_pre,
                                   T* __restrict__ grad_bias, long long rows, long long cols, int act, double p) {
    typedef typename Compute<T>::type C;
    typedef typename Accum<T>::type A;
    __shared__ A sums[8][32];
    const long long col = blockIdx.x * 32ll + threadIdx.x;
    A sum = (A)0;
    if (col < cols) {
        for (long long r = threadIdx.y; r < rows; r += 8) {
            const long long i = r * cols + col;
            C g = act_backward<C>(act, load(y, i), load(gy, i), (C)p);
            store(grad_pre, i, g);
            sum += (A)static_cast<C>(grad_pre[i]);
        }
    }
    sums[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        A total = (A)0;
#pragma unroll
        for (int k = 0; k < 8; ++k) total += sums[k][threadIdx.x];
        grad_bias[col] = static_cast<T>(total);
    }
}

// grad_bias[c] = sum over chunks of partial[chunk, c], rounded once to T.
template <typename T>
__global__ void column_sum(const typename Accum<T>::type* __restrict__ partial, T* __restrict__ out,
                           long long chunks, long long cols) {
    typedef typename Accum<T>::type A;
    for (long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x; c < cols; c += (long long)gridDim.x * blockDim.x) {
        A sum = (A)0;
        for (long long k = 0; k < chunks; ++k) sum += partial[k * cols + c];
        out[c] = static_cast<T>(sum);
    }
}

template __global__ void bias_act_fwd<float>(float*, const float*, long long, long long, int, int, double);
template __global__ void bias_act_fwd<double>(double*, const double*, long long, long long, int, int, double);
template __global__ void bias_act_bwd<float>(const float*, const float*, float*, float*, long long, long long, long long, int, double, int);
template __global__ void bias_act_bwd<double>(const double*, const double*, double*, double*, long long, long long, long long, int, double, int);
template __global__ void column_sum<float>(const float*, float*, long long, long long);
template __global__ void bias_act_bwd_small<float>(const float*, const float*, float*, float*, long long, long long, int, double);
template __global__ void bias_act_bwd_small<double>(const double*, const double*, double*, double*, long long, long long, int, double);
template __global__ void column_sum<double>(const double*, double*, long long, long long);
#ifndef GPUGRAD_NO_HALF
template __global__ void bias_act_fwd<__half>(__half*, const __half*, long long, long long, int, int, double);
template __global__ void bias_act_fwd<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, long long, long long, int, int, double);
template __global__ void bias_act_bwd<__half>(const __half*, const __half*, __half*, float*, long long, long long, long long, int, double, int);
template __global__ void bias_act_bwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*, float*, long long, long long, long long, int, double, int);
template __global__ void column_sum<__half>(const float*, __half*, long long, long long);
template __global__ void column_sum<__nv_bfloat16>(const float*, __nv_bfloat16*, long long, long long);
template __global__ void bias_act_bwd_small<__half>(const __half*, const __half*, __half*, __half*, long long, long long, int, double);
template __global__ void bias_act_bwd_small<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*, long long, long long, int, double);
#endif
