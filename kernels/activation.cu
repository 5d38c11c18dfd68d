// Elementwise activations: <act>_fwd(x -> y) and <act>_bwd(y, dy -> dx), grid-stride loops.
#include "common.cuh"

template <int ACT, typename T>
__device__ void act_fwd_loop(const T* __restrict__ x, T* __restrict__ y, long long n, double p) {
    typedef typename Compute<T>::type C;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        store(y, i, act_forward<C>(ACT, load(x, i), (C)p));
}

template <int ACT, typename T>
__device__ void act_bwd_loop(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx, long long n, double p) {
    typedef typename Compute<T>::type C;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        store(gx, i, act_backward<C>(ACT, load(y, i), load(gy, i), (C)p));
}

#ifndef GPUGRAD_NO_HALF
#define GPUGRAD_HALF_INSTANCES(name)                                                                    \
    template __global__ void name##_fwd<__half>(const __half*, __half*, long long, double);            \
    template __global__ void name##_bwd<__half>(const __half*, const __half*, __half*, long long, double);
#else
#define GPUGRAD_HALF_INSTANCES(name)
#endif

#define GPUGRAD_ACTIVATION(name, code)                                                                  \
    template <typename T>                                                                               \
    __global__ void name##_fwd(const T* __restrict__ x, T* __restrict__ y, long long n, double p) {     \
        act_fwd_loop<code, T>(x, y, n, p);                                                              \
    }                                                                                                   \
    template <typename T>                                                                               \
    __global__ void name##_bwd(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx,  \
                               long long n, double p) {                                                  \
        act_bwd_loop<code, T>(y, gy, gx, n, p);                                                         \
    }                                                                                                   \
    template __global__ void name##_fwd<float>(const float*, float*, long long, double);                \
    template __global__ void name##_fwd<double>(const double*, double*, long long, double);             \
    template __global__ void name##_bwd<float>(const float*, const float*, float*, long long, double);  \
    template __global__ void name##_bwd<double>(const double*, const double*, double*, long long, double); \
    GPUGRAD_HALF_INSTANCES(name)

GPUGRAD_ACTIVATION(relu, ACT_RELU)
GPUGRAD_ACTIVATION(sigmoid, ACT_SIGMOID)
GPUGRAD_ACTIVATION(tanh, ACT_TANH)
GPUGRAD_ACTIVATION(leaky_relu, ACT_LEAKY_RELU)
GPUGRAD_ACTIVATION(elu, ACT_ELU)
