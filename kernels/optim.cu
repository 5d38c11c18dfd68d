// Optimizer steps and the loss scaler's device side. Up to 8 tensors per launch: blockIdx.y picks
// the tensor, a grid-stride loop over blockIdx.x covers its elements, so a small model updates in one
// or two launches. The pointers travel as kernel arguments (no host-to-device copy of a pointer table).
//
// Nothing here is read back by the host: the hyperparameters (lr, betas, ...), the step counts (Adam's
// bias corrections) and the scaler's "found inf" flag live in device memory, so a float16 step with a
// GradScaler never waits for the GPU, and a step captured in a CUDA graph reads each replay's values.
// found_inf may be null (no scaler): when it points at a nonzero value every kernel here leaves its
// tensors as they are (a skipped step).
// scale may be null too: else the optimizer kernels unscale each gradient as they read it (g / scale,
// written back), after unscale_check checked them without writing: one pass over the gradients fewer.
#include "common.cuh"

#define GPUGRAD_SLOTS 8
#define GPUGRAD_PICK(i) case i: param = param##i; grad = grad##i; a = a##i; b = b##i; n = n##i; step = step##i; mask = (first_mask >> i) & 1; break;
#define GPUGRAD_ARGS(i) T* __restrict__ param##i, T* __restrict__ grad##i, T* __restrict__ a##i, T* __restrict__ b##i, long long n##i, const float* step##i

// Selects this block's parameter; a and b are the state buffers (SGD: momentum, unused; Adam: m, v),
// step its update count (null for SGD).
#define GPUGRAD_SELECT                                                                               \
    T* param; T* grad; T* a; T* b; long long n; const float* step; int mask;                         \
    switch (blockIdx.y) {                                                                             \
    GPUGRAD_PICK(0) GPUGRAD_PICK(1) GPUGRAD_PICK(2) GPUGRAD_PICK(3)                                   \
    GPUGRAD_PICK(4) GPUGRAD_PICK(5) GPUGRAD_PICK(6) GPUGRAD_PICK(7)                                   \
    default: return;                                                                                  \
    }

#define GPUGRAD_SIGNATURE \
    GPUGRAD_ARGS(0), GPUGRAD_ARGS(1), GPUGRAD_ARGS(2), GPUGRAD_ARGS(3), \
    GPUGRAD_ARGS(4), GPUGRAD_ARGS(5), GPUGRAD_ARGS(6), GPUGRAD_ARGS(7)

__device__ __forceinline__ bool skipped(const float* found_inf) { return found_inf != nullptr && *found_inf != 0.0f; }

// The gradient as the update uses it: unscaled (and written back) when the scaler's scale is given.
template <typename T, typename C>
__device__ __forceinline__ C gradient(T* grad, long long i, const float* scale, C inverse) {
    C g = load(grad, i);
    if (scale != nullptr) {
        g = g * inverse;
        store(grad, i, g);
        g = load(grad, i);  // rounded to T, as unscale_check leaves it
    }
    return g;
}

// PyTorch's unscale: the float32 reciprocal of the scale, then a multiply.
template <typename C> __device__ __forceinline__ C inverse_of(const float* scale) {
    return scale != nullptr ? (C)(1.0f / *scale) : (C)1;
}

// Constants such as 1 - beta1 are computed in double and rounded once, as the xp formulas and PyTorch do.
// SGD (PyTorch's form): d = g + wd p; momentum: buf = first ? d : m buf + (1 - dampening) d;
// d = nesterov ? d + m buf : buf; p -= lr d. Bit i of first_mask: parameter i's first momentum step.
// scalars: {lr, momentum, dampening, weight_decay} in device memory (a captured step reads each replay's values).
template <typename T>
__global__ void sgd_step(GPUGRAD_SIGNATURE, int first_mask, const double* __restrict__ scalars, int nesterov,
                         const float* found_inf, const float* scale) {
    typedef typename Compute<T>::type C;
    GPUGRAD_SELECT
    (void)step;
    if (skipped(found_inf)) return;
    const double lr = scalars[0], momentum = scalars[1], dampening = scalars[2], weight_decay = scalars[3];
    const C inverse = inverse_of<C>(scale);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        C p = load(param, i);
        C d = gradient(grad, i, scale, inverse);
        if (weight_decay != 0.0) d = d + (C)weight_decay * p;
        if (momentum != 0.0) {
            C m = mask ? d : (C)momentum * load(a, i) + (C)(1.0 - dampening) * d;
            store(a, i, m);
            d = nesterov ? d + (C)momentum * m : m;
        }
        store(param, i, p - (C)lr * d);
    }
}

// Adam (decoupled = 0) and AdamW (decoupled = 1): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
// p -= step_size m / (sqrt(v) / bias2_sqrt + eps), step_size = lr / (1 - b1^t), bias2_sqrt = sqrt(1 - b2^t),
// t = *step (already counted for this update by count_steps); scalars: {lr, beta1, beta2, eps, weight_decay}.
template <typename T>
__global__ void adam_step(GPUGRAD_SIGNATURE, int first_mask, const double* __restrict__ scalars, int decoupled,
                          const float* found_inf, const float* scale) {
    typedef typename Compute<T>::type C;
    GPUGRAD_SELECT
    (void)mask;
    if (skipped(found_inf)) return;
    const double lr = scalars[0], beta1 = scalars[1], beta2 = scalars[2], eps = scalars[3], weight_decay = scalars[4];
    const C inverse = inverse_of<C>(scale);
    const double t = (double)*step;
    const double step_size = lr / (1.0 - pow(beta1, t)), bias2_sqrt = sqrt(1.0 - pow(beta2, t));
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        C p = load(param, i);
        C g = gradient(grad, i, scale, inverse);
        if (weight_decay != 0.0) {
            if (decoupled) p = p * (C)(1.0 - lr * weight_decay);
            else g = g + (C)weight_decay * p;
        }
        C m = (C)beta1 * load(a, i) + (C)(1.0 - beta1) * g;
        C v = (C)beta2 * load(b, i) + (C)(1.0 - beta2) * (g * g);
        store(a, i, m);
        store(b, i, v);
        store(param, i, p - (C)step_size * (m / (sqrt(v) / (C)bias2_sqrt + (C)eps)));
    }
}

// One more update for each of up to 8 step counts, unless the step is skipped (one block of 8 threads).
__global__ void count_steps(float* s0, float* s1, float* s2, float* s3, float* s4, float* s5, float* s6, float* s7,
                            int count, const float* found_inf) {
    float* steps[GPUGRAD_SLOTS] = {s0, s1, s2, s3, s4, s5, s6, s7};
    if ((int)threadIdx.x < count && !skipped(found_inf)) steps[threadIdx.x][0] += 1.0f;
}

// The scaler's unscale and check: g *= 1 / scale for up to 8 gradients (write = 0: only checked, the
// optimizer kernel unscales as it reads), and *found_inf = 1 where any value is inf or NaN (every writer
// writes 1: no atomics needed).
#define GPUGRAD_GRAD_PICK(i) case i: g = g##i; n = n##i; break;
template <typename T>
__global__ void unscale_check(T* g0, long long n0, T* g1, long long n1, T* g2, long long n2, T* g3, long long n3,
                              T* g4, long long n4, T* g5, long long n5, T* g6, long long n6, T* g7, long long n7,
                              const float* scale, float* found_inf, int write) {
    typedef typename Compute<T>::type C;
    T* g; long long n;
    switch (blockIdx.y) {
    GPUGRAD_GRAD_PICK(0) GPUGRAD_GRAD_PICK(1) GPUGRAD_GRAD_PICK(2) GPUGRAD_GRAD_PICK(3)
    GPUGRAD_GRAD_PICK(4) GPUGRAD_GRAD_PICK(5) GPUGRAD_GRAD_PICK(6) GPUGRAD_GRAD_PICK(7)
    default: return;
    }
    const C inverse = inverse_of<C>(scale);
    bool bad = false;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        C v = load(g, i) * inverse;
        bad = bad || !isfinite(v);
        if (write) store(g, i, v);
    }
    if (bad) *found_inf = 1.0f;
}

// After a step (PyTorch's _amp_update_scale_): found inf -> scale *= backoff, tracker = 0; else
// tracker += 1, and at growth_interval: scale *= growth (if that stays finite), tracker = 0.
__global__ void update_scale(float* scale, int* tracker, const float* found_inf, double growth, double backoff,
                             int interval) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    if (*found_inf != 0.0f) {
        *scale = *scale * (float)backoff;
        *tracker = 0;
        return;
    }
    int successful = *tracker + 1;
    if (successful == interval) {
        float grown = *scale * (float)growth;
        if (isfinite(grown)) *scale = grown;
        successful = 0;
    }
    *tracker = successful;
}

#define GPUGRAD_TYPES(T) T*, T*, T*, T*, long long, const float*
#define GPUGRAD_ALL_TYPES(T) GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), \
                             GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), GPUGRAD_TYPES(T)
#define GPUGRAD_GRAD_TYPES(T) T*, long long, T*, long long, T*, long long, T*, long long, \
                              T*, long long, T*, long long, T*, long long, T*, long long
template __global__ void sgd_step<float>(GPUGRAD_ALL_TYPES(float), int, const double*, int, const float*, const float*);
template __global__ void sgd_step<double>(GPUGRAD_ALL_TYPES(double), int, const double*, int, const float*, const float*);
template __global__ void adam_step<float>(GPUGRAD_ALL_TYPES(float), int, const double*, int, const float*, const float*);
template __global__ void adam_step<double>(GPUGRAD_ALL_TYPES(double), int, const double*, int, const float*, const float*);
template __global__ void unscale_check<float>(GPUGRAD_GRAD_TYPES(float), const float*, float*, int);
template __global__ void unscale_check<double>(GPUGRAD_GRAD_TYPES(double), const float*, float*, int);
#ifndef GPUGRAD_NO_HALF
template __global__ void unscale_check<__half>(GPUGRAD_GRAD_TYPES(__half), const float*, float*, int);
template __global__ void unscale_check<__nv_bfloat16>(GPUGRAD_GRAD_TYPES(__nv_bfloat16), const float*, float*, int);
#endif
