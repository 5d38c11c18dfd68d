"""The numpy backend's shortcuts give the generic formulas' results: sigmoid in fewer passes, bias +
sigmoid in one, and optimizer updates through numpy's OpenBLAS (axpy/axpby) when it is found."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gpugrad
from gpugrad import optim
from gpugrad.backend import cpu_blas
from gpugrad.backend.generic import Backend

CPU = gpugrad.get_backend("cpu")
needs_blas = pytest.mark.skipif(cpu_blas.blas() is None, reason="numpy here does not bundle scipy-openblas (ILP64)")


def _ulps(a, b):
    a, b = np.asarray(a), np.asarray(b)
    spacing = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(a.dtype))
    return np.abs(a.astype(np.float64) - b.astype(np.float64)) / spacing.astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_sigmoid_matches_the_kernels_formula(dtype):
    tiny = np.finfo(dtype).tiny
    x = np.concatenate([np.linspace(-80, 80, 20001), [-1e4, -1000, -0.0, 0.0, 1000, 1e4, np.inf, -np.inf]]).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow of exp(-x) must not surface
        fast = CPU.sigmoid_fwd(x.copy())
    reference = Backend.sigmoid_fwd(CPU, x.copy())  # the generic, overflow-free form the kernels use
    normal = np.abs(reference) >= tiny
    assert _ulps(fast[normal], reference[normal]).max() <= 3
    assert (fast[~normal] <= tiny).all() and (fast[~normal] >= 0).all()
    assert fast[x == -1000][0] == 0 and fast[x == 1000][0] == 1 and fast[x == 0][0] == 0.5
    assert np.isnan(CPU.sigmoid_fwd(np.array([np.nan], dtype)))[0]


def test_cpu_sigmoid_writes_in_place_and_keeps_float16():
    x = np.linspace(-5, 5, 11, dtype=np.float32)
    out = np.empty_like(x)
    assert CPU.sigmoid_fwd(x, out=out) is out
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
    half = CPU.sigmoid_fwd(x.astype(np.float16))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, out, rtol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_plus_sigmoid_in_one_pass_equals_the_composition(dtype):
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((33, 17)) * 5).astype(dtype)
    b = rng.standard_normal(17).astype(dtype)
    fused = CPU.bias_act_fwd(z.copy(), b, "sigmoid")
    np.testing.assert_array_equal(fused, CPU.sigmoid_fwd(z + b))  # -(z + b) is exact: the same bits
    np.testing.assert_array_equal(CPU.bias_act_fwd(z.copy(), None, "sigmoid"), CPU.sigmoid_fwd(z))


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blas_axpby_matches_numpy(dtype):
    blas = cpu_blas.blas()
    rng = np.random.default_rng(1)
    for n in (1, 7, 100_003):
        x, y = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        for alpha, beta in ((-0.1, 1.0), (0.5, 0.9), (2.0, 0.0)):
            want = alpha * x.astype(np.float64) + beta * y.astype(np.float64)
            blas.axpby(alpha, x, beta, y)
            np.testing.assert_allclose(y, want, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
    big = cpu_blas.MIN_ELEMENTS
    assert blas.applies(np.ones(big, dtype), np.ones(big, dtype))
    assert not blas.applies(np.ones(big - 1, dtype), np.ones(big - 1, dtype)), "too small to pay for the call"
    assert not blas.applies(np.ones((big, 3), dtype).T, np.ones((3, big), dtype)), "non-contiguous"
    assert not blas.applies(np.ones(big, np.float32), np.ones(big, np.float64)), "mixed dtypes"
    assert not blas.applies(np.ones(big, np.float16), np.ones(big, np.float16)), "half"


@needs_blas
def test_the_c_axpby_refuses_what_blas_cannot_take():
    from gpugrad.autograd import _engine
    if _engine is None:
        pytest.skip("gpugrad._engine is not built: the ctypes path above is the one in use")
    cpu_blas.blas()  # hands the extension the BLAS functions
    with pytest.raises(ValueError, match="float32 or float64.*got formats"):
        _engine.axpby(1.0, np.ones(4, np.float32), 1.0, np.ones(4, np.float64))
    with pytest.raises(ValueError, match="16 and 12 bytes"):
        _engine.axpby(1.0, np.ones(4, np.float32), 1.0, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="got formats i and i"):
        _engine.axpby(1.0, np.ones(4, np.int32), 1.0, np.ones(4, np.int32))
    frozen = np.ones(4, np.float32)
    frozen.flags.writeable = False
    with pytest.raises((BufferError, ValueError)):
        _engine.axpby(1.0, np.ones(4, np.float32), 1.0, frozen)
    with pytest.raises((BufferError, ValueError)):
        _engine.axpby(1.0, np.ones((4, 2), np.float32).T, 1.0, np.ones((2, 4), np.float32))


OPTIMIZERS = {
    "sgd": dict(cls=optim.SGD, lr=0.1),
    "sgd wd": dict(cls=optim.SGD, lr=0.1, weight_decay=0.3),
    "momentum": dict(cls=optim.SGD, lr=0.1, momentum=0.9),
    "momentum dampening wd": dict(cls=optim.SGD, lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.05),
    "nesterov": dict(cls=optim.SGD, lr=0.1, momentum=0.8, nesterov=True),
    "nesterov wd": dict(cls=optim.SGD, lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.1),
    "adam": dict(cls=optim.Adam, lr=0.01),
    "adam l2": dict(cls=optim.Adam, lr=0.01, weight_decay=0.1),
    "adamw": dict(cls=optim.AdamW, lr=0.01, weight_decay=0.1),
}


class _Generic(type(CPU)):
    """The numpy backend with the generic (kernel-formula) optimizer updates."""
    _sgd_one = Backend._sgd_one
    _adam_one = Backend._adam_one


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_blas_optimizer_updates_match_the_generic_ones(name, dtype):
    config = dict(OPTIMIZERS[name])
    cls = config.pop("cls")
    rng = np.random.default_rng(2)
    # (128, 80) takes the BLAS path, the small ones numpy's
    start = [rng.standard_normal(shape).astype(dtype) for shape in ((128, 80), (80,), (1,))]
    grads = [[rng.standard_normal(p.shape).astype(dtype) for p in start] for _ in range(4)]
    generic = _Generic()
    results = []
    for backend in (CPU, generic):
        params = [gpugrad.tensor(p.copy(), requires_grad=True) for p in start]
        opt = cls(params, **config)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = gpugrad.tensor(g)
            for _, arrays, grad_arrays, states in opt._groups():
                if cls is optim.SGD:
                    backend.sgd_step(arrays, grad_arrays, states, opt.defaults["lr"], opt.defaults["momentum"],
                                     opt.defaults["dampening"], opt.defaults["nesterov"], opt.defaults["weight_decay"])
                else:
                    for state in states:
                        state["step"] = state.get("step", 0) + 1
                    backend.adam_step(arrays, grad_arrays, states, opt.defaults["lr"], *opt.defaults["betas"],
                                      opt.defaults["eps"], opt.defaults["weight_decay"], cls is optim.AdamW)
        results.append([p.numpy() for p in params])
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    for fast, reference, before in zip(*results, start):
        np.testing.assert_allclose(fast, reference, rtol=rtol, atol=rtol)
        assert not np.allclose(fast, before, rtol=1e-3, atol=0), "the steps moved the parameter"


def test_optimizers_fall_back_for_non_contiguous_gradients():
    grad = np.arange(128 * 96, dtype=np.float32).reshape(96, 128).T / 1000  # a transposed view, BLAS-sized
    p = gpugrad.tensor(np.ones((128, 96), np.float32), requires_grad=True)
    p.grad = gpugrad.tensor(grad)
    optim.SGD([p], lr=0.5, momentum=0.9).step()
    np.testing.assert_allclose(p.numpy(), 1 - 0.5 * grad, rtol=1e-6)


def test_blas_can_be_switched_off():
    code = "from gpugrad.backend import cpu_blas; print(cpu_blas.blas())"
    env = dict(os.environ, GPUGRAD_CPU_BLAS="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_relu_against_a_row_of_zeros_is_the_same_maximum(dtype):
    rng = np.random.default_rng(3)
    for shape in ((5, 64), (3, 2, 100), (7, 3)):  # the row path, a batch of rows, the scalar path
        x = rng.standard_normal(shape).astype(dtype)
        x.flat[:5] = [np.nan, -np.inf, np.inf, -0.0, 0.0]
        y = CPU.relu_fwd(x)
        np.testing.assert_array_equal(y, Backend.relu_fwd(CPU, x))
        assert np.isnan(y.flat[0]) and y.flat[1] == 0 and y.flat[2] == np.inf
        out = x.copy()
        assert CPU.relu_fwd(out, out=out) is out
        np.testing.assert_array_equal(out, y)
