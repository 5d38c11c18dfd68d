// Shared by gpugrad's kernels: compute types and the activation functors.
// Half precision (float16 and bfloat16) is loaded, computed in float and stored back; float and
// double compute natively.
#pragma once
#ifndef GPUGRAD_NO_HALF
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif

template <typename T> struct Compute { typedef T type; };
#ifndef GPUGRAD_NO_HALF
template <> struct Compute<__half> { typedef float type; };
template <> struct Compute<__nv_bfloat16> { typedef float type; };
#endif

template <typename T> __device__ __forceinline__ typename Compute<T>::type load(const T* p, long long i) {
    return static_cast<typename Compute<T>::type>(p[i]);
}
template <typename T, typename C> __device__ __forceinline__ void store(T* p, long long i, C v) {
    p[i] = static_cast<T>(v);
}

// 16 bytes of T: loaded and stored with one 128-bit access when the pointer is 16-byte aligned.
template <typename T> struct alignas(16) Pack { T v[16 / sizeof(T)]; };

__device__ __forceinline__ bool aligned16(const void* a, const void* b = nullptr, const void* c = nullptr) {
    return (((unsigned long long)a | (unsigned long long)b | (unsigned long long)c) & 15ull) == 0;
}

// Activation codes: defined once, in gpugrad/ops/activation.py (ACTIVATIONS), and passed by the
// launcher as -DGPUGRAD_ACT_<NAME>=<code>. The defaults let nvcc compile a file alone; a test checks
// that they equal the Python table.
#ifndef GPUGRAD_ACT_RELU
#define GPUGRAD_ACT_RELU 1
#endif
#ifndef GPUGRAD_ACT_SIGMOID
#define GPUGRAD_ACT_SIGMOID 2
#endif
#ifndef GPUGRAD_ACT_TANH
#define GPUGRAD_ACT_TANH 3
#endif
#ifndef GPUGRAD_ACT_LEAKY_RELU
#define GPUGRAD_ACT_LEAKY_RELU 4
#endif
#ifndef GPUGRAD_ACT_ELU
#define GPUGRAD_ACT_ELU 5
#endif
enum Act { ACT_NONE = 0, ACT_RELU = GPUGRAD_ACT_RELU, ACT_SIGMOID = GPUGRAD_ACT_SIGMOID, ACT_TANH = GPUGRAD_ACT_TANH,
           ACT_LEAKY_RELU = GPUGRAD_ACT_LEAKY_RELU, ACT_ELU = GPUGRAD_ACT_ELU };

// Forward from the input x; p is the slope (leaky ReLU) or alpha (ELU).
template <typename C> __device__ __forceinline__ C act_forward(int act, C x, C p) {
    switch (act) {
    case ACT_RELU: return (x > (C)0 || x != x) ? x : (C)0;  // NaN propagates
    // 1 / (1 + exp(-x)): full relative accuracy in both tails; exp(-x) = inf below -88.7 (float)
    // gives 0 where the true value is subnormal. The same formula as the xp one in ops/activation.py.
    case ACT_SIGMOID: return (C)1 / ((C)1 + exp(-x));
    case ACT_TANH: return tanh(x);
    case ACT_LEAKY_RELU: return x > (C)0 ? x : x * p;
    case ACT_ELU: return x > (C)0 ? x : expm1(fmin(x, (C)0)) * p;
    default: return x;
    }
}

// Backward from the saved output y and the upstream gradient g.
template <typename C> __device__ __forceinline__ C act_backward(int act, C y, C g, C p) {
    switch (act) {
    case ACT_RELU: return g * (y > (C)0 ? (C)1 : (C)0);  // relu'(0) = 0; a NaN dy stays NaN
    case ACT_SIGMOID: return ((C)1 - y) * y * g;  // the xp formula's order of rounding
    case ACT_TANH: return g * ((C)1 - y * y);
    case ACT_LEAKY_RELU: return y > (C)0 ? g : g * p;
    case ACT_ELU: return y > (C)0 ? g : g * (y + p);  // alpha e^x = y + alpha for x <= 0
    default: return g;
    }
}
