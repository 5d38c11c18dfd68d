// Optimizer steps. Up to 8 parameters per launch: blockIdx.y picks the parameter, a grid-stride
// loop over blockIdx.x covers its elements, so a small model updates in one or two launches.
// The pointers travel as kernel arguments (no host-to-device copy of a pointer table).
#include "common.cuh"

#define GPUGRAD_SLOTS 8
#define GPUGRAD_PICK(i) case i: param = param##i; grad = grad##i; a = a##i; b = b##i; n = n##i; mask = (first_mask >> i) & 1; break;
#define GPUGRAD_ARGS(i) T* __restrict__ param##i, const T* __restrict__ grad##i, T* __restrict__ a##i, T* __restrict__ b##i, long long n##i

// Selects this block's parameter; a and b are the state buffers (SGD: momentum, unused; Adam: m, v).
#define GPUGRAD_SELECT                                                                               \
    T* param; const T* grad; T* a; T* b; long long n; int mask;                                      \
    switch (blockIdx.y) {                                                                             \
    GPUGRAD_PICK(0) GPUGRAD_PICK(1) GPUGRAD_PICK(2) GPUGRAD_PICK(3)                                   \
    GPUGRAD_PICK(4) GPUGRAD_PICK(5) GPUGRAD_PICK(6) GPUGRAD_PICK(7)                                   \
    default: return;                                                                                  \
    }

#define GPUGRAD_SIGNATURE \
    GPUGRAD_ARGS(0), GPUGRAD_ARGS(1), GPUGRAD_ARGS(2), GPUGRAD_ARGS(3), \
    GPUGRAD_ARGS(4), GPUGRAD_ARGS(5), GPUGRAD_ARGS(6), GPUGRAD_ARGS(7)

// SGD (PyTorch's form): d = g + wd p; momentum: buf = first ? d : m buf + (1 - dampening) d;
// d = nesterov ? d + m buf : buf; p -= lr d. Bit i of first_mask: parameter i's first momentum step.
template <typename T>
__global__ void sgd_step(GPUGRAD_SIGNATURE, int first_mask, double lr, double momentum, double dampening,
                         double weight_decay, int nesterov) {
    typedef typename Compute<T>::type C;
    GPUGRAD_SELECT
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        C p = load(param, i);
        C d = load(grad, i);
        if (weight_decay != 0.0) d = d + (C)weight_decay * p;
        if (momentum != 0.0) {
            C m = mask ? d : (C)momentum * load(a, i) + ((C)1 - (C)dampening) * d;
            store(a, i, m);
            d = nesterov ? d + (C)momentum * m : m;
        }
        store(param, i, p - (C)lr * d);
    }
}

// Adam (decoupled = 0) and AdamW (decoupled = 1): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
// p -= step_size m / (sqrt(v) / bias2_sqrt + eps), step_size = lr / (1 - b1^t), bias2_sqrt = sqrt(1 - b2^t).
template <typename T>
__global__ void adam_step(GPUGRAD_SIGNATURE, int first_mask, double lr, double beta1, double beta2, double eps,
                          double weight_decay, int decoupled, double step_size, double bias2_sqrt) {
    typedef typename Compute<T>::type C;
    GPUGRAD_SELECT
    (void)mask;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        C p = load(param, i);
        C g = load(grad, i);
        if (weight_decay != 0.0) {
            if (decoupled) p = p * ((C)1 - (C)lr * (C)weight_decay);
            else g = g + (C)weight_decay * p;
        }
        C m = (C)beta1 * load(a, i) + ((C)1 - (C)beta1) * g;
        C v = (C)beta2 * load(b, i) + ((C)1 - (C)beta2) * (g * g);
        store(a, i, m);
        store(b, i, v);
        store(param, i, p - (C)step_size * (m / (sqrt(v) / (C)bias2_sqrt + (C)eps)));
    }
}

#define GPUGRAD_TYPES(T) T*, const T*, T*, T*, long long
#define GPUGRAD_ALL_TYPES(T) GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), \
                             GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), GPUGRAD_TYPES(T), GPUGRAD_TYPES(T)
template __global__ void sgd_step<float>(GPUGRAD_ALL_TYPES(float), int, double, double, double, double, int);
template __global__ void sgd_step<double>(GPUGRAD_ALL_TYPES(double), int, double, double, double, double, int);
template __global__ void adam_step<float>(GPUGRAD_ALL_TYPES(float), int, double, double, double, double, double, int, double, double);
template __global__ void adam_step<double>(GPUGRAD_ALL_TYPES(double), int, double, double, double, double, double, int, double, double);
