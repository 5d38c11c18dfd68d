"""The numpy backend's multi-threaded paths (large arrays) compute exactly what one thread computes."""
import numpy as np
import pytest

from gpugrad.backend import Backend
from gpugrad.backend.numpy_backend import PARALLEL_MIN, NumpyBackend


@pytest.fixture
def threaded():
    backend = NumpyBackend()
    backend.threads = 3  # an odd split, whatever this machine has
    return backend


def _arrays(dtype=np.float32, rows=PARALLEL_MIN // 500 + 7, cols=500):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((rows, cols)) * 3).astype(dtype) for _ in range(2)]


@pytest.mark.parametrize("name,params", [("sigmoid", {}), ("relu", {}), ("tanh", {}),
                                         ("leaky_relu", {"negative_slope": 0.1}), ("elu", {"alpha": 0.5})])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_activations_match_one_thread(threaded, name, params, dtype):
    x, g = _arrays(dtype)
    serial = NumpyBackend()
    serial.threads = 1
    y = getattr(serial, name + "_fwd")(x, **params)
    np.testing.assert_array_equal(getattr(threaded, name + "_fwd")(x, **params), y)
    np.testing.assert_array_equal(getattr(threaded, name + "_bwd")(y, g, **params), getattr(serial, name + "_bwd")(y, g, **params))
    out = x.copy()
    getattr(threaded, name + "_fwd")(out, out=out, **params)  # in place, as the bias epilogue does
    np.testing.assert_array_equal(out, y)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid"])
def test_threaded_bias_activation_matches_one_thread(threaded, activation):
    z, g = _arrays()
    bias = np.linspace(-1, 1, z.shape[1]).astype(np.float32)
    y_serial = Backend.bias_act_fwd(threaded, z.copy(), bias, activation)
    y = threaded.bias_act_fwd(z.copy(), bias, activation)
    np.testing.assert_array_equal(y, y_serial)
    pre_serial, bias_serial = Backend.bias_act_bwd(threaded, y, g, activation, True)
    pre, bias_grad = threaded.bias_act_bwd(y, g, activation, True)
    np.testing.assert_array_equal(pre, pre_serial)
    np.testing.assert_allclose(bias_grad, bias_serial, rtol=1e-5, atol=1e-4)  # summed in another order


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_threaded_optimizer_steps_match_one_thread(threaded, kind):
    p0, g = _arrays(np.float64)
    runs = []
    for backend in (threaded, None):
        p, state = p0.copy(), {}
        for step in range(1, 4):
            args = dict(sgd=(0.1, 0, 0, False, 0.01), momentum=(0.1, 0.9, 0, False, 0), nesterov=(0.1, 0.9, 0, True, 0))
            if kind in args:
                (threaded._sgd_one if backend else lambda *a: Backend._sgd_one(threaded, *a))(p, g, state, *args[kind])
            else:
                call = threaded._adam_one if backend else lambda *a: Backend._adam_one(threaded, *a)
                call(p, g, state, step, 0.01, 0.9, 0.999, 1e-8, 0.1, kind == "adamw")
        runs.append(p)
    np.testing.assert_array_equal(runs[0], runs[1])
