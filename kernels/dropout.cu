// Dropout in one pass: y = x * mask * scale with mask ~ Bernoulli(1 - p), and the scaled mask
// (what backward multiplies by) written beside it; with an activation code, y = act(x) * mask * scale
// and act(x) written too (its backward needs it): an activation and the dropout after it in one pass. The random numbers are counter-based: element i
// of a launch draws splitmix64(seed, offset + i), with (seed, offset) in device memory; the launch
// after it advances the offset by n. Nothing is read on the host, so a captured step (CUDA graph)
// draws a new mask at every replay, and the sequence of masks follows from gpugrad.manual_seed.
#include "common.cuh"

__device__ __forceinline__ float uniform01(unsigned long long seed, unsigned long long counter) {
    unsigned long long z = seed + 0x9E3779B97F4A7C15ull * (counter + 1ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);  // 24 random bits: [0, 1) exactly in float
}

template <typename T>
__global__ void dropout_fwd(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ scaled_mask, long long n,
                            float p, double scale, const unsigned long long* __restrict__ state, int act,
                            double act_param, T* __restrict__ activated) {
    typedef typename Compute<T>::type C;
    const unsigned long long seed = state[0], offset = state[1];
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride) {
        const C keep = uniform01(seed, offset + (unsigned long long)i) >= p ? (C)scale : (C)0;
        store(scaled_mask, i, keep);
        C v = load(x, i);
        if (act != ACT_NONE) {
            const T a = static_cast<T>(act_forward<C>(act, v, (C)act_param));  // rounded to T, as unfused
            activated[i] = a;
            v = static_cast<C>(a);
        }
        store(y, i, v * keep);
    }
}

__global__ void dropout_advance(unsigned long long* state, long long n) {
    if (blockIdx.x == 0 && threadIdx.x == 0) state[1] += (unsigned long long)n;
}

template __global__ void dropout_fwd<float>(const float*, float*, float*, long long, float, double, const unsigned long long*, int, double, float*);
template __global__ void dropout_fwd<double>(const double*, double*, double*, long long, float, double, const unsigned long long*, int, double, double*);
#ifndef GPUGRAD_NO_HALF
template __global__ void dropout_fwd<__half>(const __half*, __half*, __half*, long long, float, double, const unsigned long long*, int, double, __half*);
template __global__ void dropout_fwd<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, __nv_bfloat16*, long long, float, double, const unsigned long long*, int, double, __nv_bfloat16*);
#endif
