// Elementwise activations: <act>_fwd(x -> y) and <act>_bwd(y, dy -> dx).
// Grid-stride loops (correct for any launch size) over 16-byte packs, four packs in flight per
// thread, with a scalar loop for the tail and for unaligned pointers.
#include "common.cuh"

template <int ACT, typename T>
__device__ __forceinline__ void fwd_pack(Pack<T>& a, double p) {
    typedef typename Compute<T>::type C;
#pragma unroll
    for (int k = 0; k < (int)(16 / sizeof(T)); ++k) a.v[k] = static_cast<T>(act_forward<C>(ACT, static_cast<C>(a.v[k]), (C)p));
}

template <int ACT, typename T>
__device__ __forceinline__ void bwd_pack(const Pack<T>& y, Pack<T>& g, double p) {
    typedef typename Compute<T>::type C;
#pragma unroll
    for (int k = 0; k < (int)(16 / sizeof(T)); ++k)
        g.v[k] = static_cast<T>(act_backward<C>(ACT, static_cast<C>(y.v[k]), static_cast<C>(g.v[k]), (C)p));
}

// UNROLL packs per thread per trip: their loads are all issued before the first use.
#define GPUGRAD_UNROLL 4

template <int ACT, typename T>
__device__ void act_fwd_loop(const T* __restrict__ x, T* __restrict__ y, long long n, double p) {
    typedef typename Compute<T>::type C;
    const long long V = 16 / sizeof(T);
    const long long tid = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long done = 0;
    if (aligned16(x, y)) {
        const Pack<T>* xs = reinterpret_cast<const Pack<T>*>(x);
        Pack<T>* ys = reinterpret_cast<Pack<T>*>(y);
        const long long packs = n / V;
        for (long long base = tid; base < packs; base += GPUGRAD_UNROLL * stride) {
            Pack<T> a[GPUGRAD_UNROLL];
#pragma unroll
            for (int u = 0; u < GPUGRAD_UNROLL; ++u)
                if (base + u * stride < packs) a[u] = xs[base + u * stride];
#pragma unroll
            for (int u = 0; u < GPUGRAD_UNROLL; ++u)
                if (base + u * stride < packs) {
                    fwd_pack<ACT, T>(a[u], p);
                    ys[base + u * stride] = a[u];
                }
        }
        done = packs * V;
    }
    for (long long i = done + tid; i < n; i += stride) store(y, i, act_forward<C>(ACT, load(x, i), (C)p));
}

template <int ACT, typename T>
__device__ void act_bwd_loop(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx, long long n, double p) {
    typedef typename Compute<T>::type C;
    const long long V = 16 / sizeof(T);
    const long long tid = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long done = 0;
    if (aligned16(y, gy, gx)) {
        const Pack<T>* ys = reinterpret_cast<const Pack<T>*>(y);
        const Pack<T>* gys = reinterpret_cast<const Pack<T>*>(gy);
        Pack<T>* gxs = reinterpret_cast<Pack<T>*>(gx);
        const long long packs = n / V;
        for (long long base = tid; base < packs; base += GPUGRAD_UNROLL * stride) {
            Pack<T> ya[GPUGRAD_UNROLL], ga[GPUGRAD_UNROLL];
#pragma unroll
            for (int u = 0; u < GPUGRAD_UNROLL; ++u)
                if (base + u * stride < packs) {
                    ya[u] = ys[base + u * stride];
                    ga[u] = gys[base + u * stride];
                }
#pragma unroll
            for (int u = 0; u < GPUGRAD_UNROLL; ++u)
                if (base + u * stride < packs) {
                    bwd_pack<ACT, T>(ya[u], ga[u], p);
                    gxs[base + u * stride] = ga[u];
                }
        }
        done = packs * V;
    }
    for (long long i = done + tid; i < n; i += stride) store(gx, i, act_backward<C>(ACT, load(y, i), load(gy, i), (C)p));
}

#ifndef GPUGRAD_NO_HALF
#define GPUGRAD_HALF_INSTANCES(name)                                                                    \
    template __global__ void name##_fwd<__half>(const __half*, __half*, long long, double);            \
    template __global__ void name##_bwd<__half>(const __half*, const __half*, __half*, long long, double);            \
    template __global__ void name##_fwd<__nv_bfloat16>(const __nv_bfloat16*, __nv_bfloat16*, long long, double);   \
    template __global__ void name##_bwd<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*, \
                                                       long long, double);
#else
#define GPUGRAD_HALF_INSTANCES(name)
#endif

#define GPUGRAD_ACTIVATION(name, code)                                                                  \
    template <typename T>                                                                               \
    __global__ void name##_fwd(const T* __restrict__ x, T* __restrict__ y, long long n, double p) {    \
        act_fwd_loop<code, T>(x, y, n, p);                                                              \
    }                                                                                                   \
    template <typename T>                                                                               \
    __global__ void name##_bwd(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx,  \
                               long long n, double p) {                                                 \
        act_bwd_loop<code, T>(y, gy, gx, n, p);                                                         \
    }                                                                                                   \
    template __global__ void name##_fwd<float>(const float*, float*, long long, double);               \
    template __global__ void name##_fwd<double>(const double*, double*, long long, double);            \
    template __global__ void name##_bwd<float>(const float*, const float*, float*, long long, double); \
    template __global__ void name##_bwd<double>(const double*, const double*, double*, long long, double); \
    GPUGRAD_HALF_INSTANCES(name)

GPUGRAD_ACTIVATION(relu, ACT_RELU)
GPUGRAD_ACTIVATION(sigmoid, ACT_SIGMOID)
GPUGRAD_ACTIVATION(tanh, ACT_TANH)
GPUGRAD_ACTIVATION(leaky_relu, ACT_LEAKY_RELU)
GPUGRAD_ACTIVATION(elu, ACT_ELU)
