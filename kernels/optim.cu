// Optimizer steps over one flat buffer of parameters (and one of gradients, and of state):
// one launch updates every parameter of a model.
#include "common.cuh"

template <typename T>
__global__ void sgd_step(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ momentum_buf,
                         long long n, double lr, double momentum, double dampening, double weight_decay,
                         int nesterov, int first_step) {
    typedef typename Compute<T>::type C;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        C p = load(param, i);
        C g = load(grad, i);
        if (weight_decay != 0.0) g = g + (C)weight_decay * p;
        if (momentum != 0.0) {
            C b = first_step ? g : (C)momentum * load(momentum_buf, i) + ((C)1 - (C)dampening) * g;
            store(momentum_buf, i, b);
            g = nesterov ? g + (C)momentum * b : b;
        }
        store(param, i, p - (C)lr * g);
    }
}

// Adam (decoupled = 0) and AdamW (decoupled = 1). step_size = lr / (1 - beta1^t),
// bias2_sqrt = sqrt(1 - beta2^t), computed on the host once per step.
template <typename T>
__global__ void adam_step(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ exp_avg,
                          T* __restrict__ exp_avg_sq, long long n, double lr, double beta1, double beta2, double eps,
                          double weight_decay, int decoupled, double step_size, double bias2_sqrt) {
    typedef typename Compute<T>::type C;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
        C p = load(param, i);
        C g = load(grad, i);
        if (weight_decay != 0.0) {
            if (decoupled) p = p * ((C)1 - (C)lr * (C)weight_decay);
            else g = g + (C)weight_decay * p;
        }
        C m = (C)beta1 * load(exp_avg, i) + ((C)1 - (C)beta1) * g;
        C v = (C)beta2 * load(exp_avg_sq, i) + ((C)1 - (C)beta2) * g * g;
        store(exp_avg, i, m);
        store(exp_avg_sq, i, v);
        store(param, i, p - (C)step_size * m / (sqrt(v) / (C)bias2_sqrt + (C)eps));
    }
}

template __global__ void sgd_step<float>(float*, const float*, float*, long long, double, double, double, double, int, int);
template __global__ void sgd_step<double>(double*, const double*, double*, long long, double, double, double, double, int, int);
template __global__ void adam_step<float>(float*, const float*, float*, float*, long long, double, double, double, double, double, int, double, double);
template __global__ void adam_step<double>(double*, const double*, double*, double*, long long, double, double, double, double, double, int, double, double);
