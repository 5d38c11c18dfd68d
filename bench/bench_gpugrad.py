"""pytest-benchmark suites, parameterised by device:

    pytest bench --benchmark-enable [--benchmark-json out.json] [-m "not gpu"]

Under the default ``--benchmark-disable`` (as in CI) each benchmark runs once, as a smoke test.
"""
import numpy as np
import pytest

import gpugrad
import gpugrad.cuda
import gpugrad.functional as F
from gpugrad.backend import get_backend
from gpugrad.app.benchmark import MODELS, gpugrad_setup, numpy_setup
from gpugrad.ops.activation import ACTIVATIONS, apply_backward, apply_forward
from gpugrad.ops.matmul import bias_act_backward, bias_act_forward


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    if request.param == "cuda":
        reason = gpugrad.cuda.unavailable_reason()
        if reason:
            pytest.skip(reason)
    return request.param


def timed(benchmark, fn, sync):
    """Benchmark ``fn`` with the device synchronized before the clock is read."""
    def run():
        fn()
        sync()
    sync()
    return benchmark(run)


@pytest.mark.parametrize("path", ["fused", "generic"])
@pytest.mark.parametrize("op", ["sigmoid", "relu"])
def bench_activation_forward_backward(benchmark, device, op, path):
    """The op's path (the kernel on a GPU) against its xp formula alone."""
    backend = get_backend(device)
    n = 1 << 22 if device == "cpu" else 1 << 26
    x = backend.randn((n,), np.float32)
    g = backend.randn((n,), np.float32)
    formula = ACTIVATIONS[op]
    if path == "fused":
        def call():
            apply_backward(backend, op, apply_forward(backend, op, x, 0.0), g, 0.0)
    else:
        def call():
            formula.backward(backend.xp, formula.forward(backend.xp, x, 0.0), g, 0.0)
    timed(benchmark, call, backend.synchronize)


@pytest.mark.parametrize("path", ["fused", "generic"])
def bench_bias_relu_forward_backward(benchmark, device, path):
    backend = get_backend(device)
    rows, cols = (1024, 1024) if device == "cpu" else (16384, 4096)
    z = backend.randn((rows, cols), np.float32)
    b = backend.randn((cols,), np.float32)
    g = backend.randn((rows, cols), np.float32)
    xp, relu = backend.xp, ACTIVATIONS["relu"]

    def step():
        if path == "fused":
            y = bias_act_forward(backend, z, b, "relu", 0.0)
            bias_act_backward(backend, y, g, "relu", 0.0, True)
        else:
            y = relu.forward(xp, xp.add(z, b, out=z), 0.0, out=z)
            relu.backward(xp, y, g, 0.0).sum(axis=0)
    timed(benchmark, step, backend.synchronize)


@pytest.mark.parametrize("shapes", [((512, 1024), (1024, 1024)), ((16, 128, 256), (16, 256, 128))], ids=["2d", "batched"])
def bench_matmul_forward_backward(benchmark, device, shapes):
    backend = get_backend(device)
    a = gpugrad.tensor(backend.to_numpy(backend.randn(shapes[0], np.float32)), device=device, requires_grad=True)
    b = gpugrad.tensor(backend.to_numpy(backend.randn(shapes[1], np.float32)), device=device, requires_grad=True)

    def step():
        a.grad = b.grad = None
        (a @ b).sum().backward()
    timed(benchmark, step, backend.synchronize)


@pytest.mark.parametrize("impl", ["gpugrad", "numpy"])
@pytest.mark.parametrize("model", ["lecture", "mlp", "large"])
def bench_training_step(benchmark, device, model, impl):
    sizes, batch, biases, loss = MODELS[model]
    if model == "large" and device == "cpu":
        pytest.skip("4 x 4096 at batch 4096 is a GPU benchmark")
    if impl == "numpy" and device != "cpu":
        pytest.skip("hand-written numpy runs on the CPU")
    lr = 1e-4 if loss == "sse" else 0.05
    if impl == "gpugrad":
        step, sync = gpugrad_setup(sizes, batch, biases, loss, "sigmoid", np.float32, device, lr)
    else:
        step, sync = numpy_setup(sizes, batch, biases, loss, "sigmoid", np.float32, lr)
    timed(benchmark, step, sync)


def bench_cross_entropy_forward_backward(benchmark, device):
    backend = get_backend(device)
    logits = gpugrad.tensor(backend.to_numpy(backend.randn((4096, 1000), np.float32)), device=device, requires_grad=True)
    labels = gpugrad.tensor(np.random.default_rng(0).integers(0, 1000, 4096), device=device)

    def step():
        logits.grad = None
        F.cross_entropy(logits, labels).backward()
    timed(benchmark, step, backend.synchronize)
