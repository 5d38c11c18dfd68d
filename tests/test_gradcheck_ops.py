"""Every differentiable op, gradient-checked in float64 against central differences."""
import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from conftest import T

rng = np.random.default_rng(42)


def away_from_zero(shape, low=0.2, high=2.0):
    magnitude = rng.uniform(low, high, size=shape)
    return magnitude * rng.choice([-1.0, 1.0], size=shape)


def distinct(shape):
    """Values with no ties (max/min/maximum kinks avoided)."""
    n = int(np.prod(shape)) if shape else 1
    return (rng.permutation(n).reshape(shape) * 0.37 - 0.5 * n * 0.37 + 0.1).astype(np.float64)


BINARY_SHAPES = [((), ()), ((3,), ()), ((3, 1), (1, 4)), ((2, 1, 3), (3,)), ((2, 3), (2, 3))]


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "where"])
def test_binary(device, op, shapes):
    a = T(away_from_zero(shapes[0]) if op != "pow" else rng.uniform(0.5, 2.0, shapes[0]), device)
    b = T(away_from_zero(shapes[1]), device)
    if op in ("maximum", "minimum"):
        a = T(distinct(shapes[0]), device)
        b = T(distinct(shapes[1]) + 0.05, device)
    cond = rng.random(np.broadcast_shapes(shapes[0], shapes[1])) > 0.5
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "pow": lambda a, b: a ** b, "maximum": F.maximum,
          "minimum": F.minimum, "where": lambda a, b: F.where(cond, a, b)}[op]
    assert gpugrad.gradcheck(fn, [a, b])


@pytest.mark.parametrize("shape", [(), (5,), (3, 4)], ids=str)
@pytest.mark.parametrize("op", ["neg", "exp", "log", "sqrt", "abs", "sigmoid", "tanh", "relu", "leaky_relu",
                                "elu", "pow_scalar", "square", "rsub", "rdiv", "rpow"])
def test_unary(device, op, shape):
    positive = op in ("log", "sqrt")
    x = T(rng.uniform(0.3, 2.0, shape) if positive else away_from_zero(shape), device)
    fn = {"neg": lambda x: -x, "exp": lambda x: x.exp(), "log": lambda x: x.log(), "sqrt": lambda x: x.sqrt(),
          "abs": lambda x: x.abs(), "sigmoid": F.sigmoid, "tanh": F.tanh, "relu": F.relu,
          "leaky_relu": lambda x: F.leaky_relu(x, 0.1), "elu": lambda x: F.elu(x, 1.3),
          "pow_scalar": lambda x: x ** 3, "square": lambda x: x ** 2, "rsub": lambda x: 2 - x, "rdiv": lambda x: 2 / x,
          "rpow": lambda x: 2 ** x}[op]
    assert gpugrad.gradcheck(fn, [x])


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False), (-1, False)])
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
def test_reductions(device, op, axis, keepdims):
    x = T(distinct((2, 3, 4)), device)
    assert gpugrad.gradcheck(lambda x: getattr(x, op)(axis=axis, keepdims=keepdims), [x])


def test_reductions_of_0d(device):
    x = T(1.5, device)
    for op in ("sum", "mean", "max", "min"):
        assert gpugrad.gradcheck(lambda x: getattr(x, op)(), [x])


MATMUL_SHAPES = [((4, 3), (3, 5)), ((2, 4, 3), (3, 5)), ((2, 4, 3), (2, 3, 5)), ((3,), (3, 5)),
                 ((4, 3), (3,)), ((3,), (3,)), ((2, 1, 4, 3), (3, 3, 5)), ((4, 3), (2, 3, 5))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(device, shapes):
    a, b = T(rng.standard_normal(shapes[0]), device), T(rng.standard_normal(shapes[1]), device)
    assert gpugrad.gradcheck(lambda a, b: a @ b, [a, b])


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("x_shape", [(5, 3), (2, 5, 3), (3,)], ids=str)
def test_linear(device, activation, x_shape):
    x = T(away_from_zero(x_shape), device)
    w, b = T(away_from_zero((4, 3)), device), T(away_from_zero((4,)), device)
    assert gpugrad.gradcheck(lambda x, w, b: F.linear(x, w, b, activation=activation), [x, w, b])
    assert gpugrad.gradcheck(lambda x, w: F.linear(x, w, activation=activation), [x, w])


@pytest.mark.parametrize("activation,param,composed", [
    ("leaky_relu", {"negative_slope": 0.2}, lambda z: F.leaky_relu(z, 0.2)),
    ("elu", {"alpha": 0.7}, lambda z: F.elu(z, 0.7)),
    ("elu", {}, F.elu),
])
def test_linear_takes_every_activation_with_its_parameter(device, activation, param, composed):
    x = T(away_from_zero((5, 3)), device)
    w, b = T(away_from_zero((4, 3)), device), T(away_from_zero((4,)), device)
    assert gpugrad.gradcheck(lambda x, w, b: F.linear(x, w, b, activation=activation, **param), [x, w, b])
    fused = F.linear(x, w, b, activation=activation, **param).numpy()
    np.testing.assert_allclose(fused, composed(x @ w.T + b).numpy(), rtol=1e-12)
    layer = gpugrad.nn.Sequential(gpugrad.nn.Linear(3, 4, dtype=np.float64, device=device),
                                  gpugrad.nn.LeakyReLU(0.2) if activation == "leaky_relu" else gpugrad.nn.ELU(**param))
    layer[0].weight.data[...], layer[0].bias.data[...] = w.data, b.data
    np.testing.assert_allclose(layer(x).numpy(), fused, rtol=1e-12)
    with pytest.raises(ValueError, match="linear: activation 'relu' takes no parameter"):
        F.linear(x, w, b, activation="relu", alpha=1.0)


@pytest.mark.parametrize("op", ["reshape", "transpose", "T", "swapaxes", "broadcast_to", "squeeze", "unsqueeze",
                                "flatten", "slice", "int_index", "int_array_repeated", "bool_mask", "none_ellipsis",
                                "tensor_index"])
def test_shape_ops(device, op):
    x = T(rng.standard_normal((2, 1, 3)), device)
    x2 = T(rng.standard_normal((3, 4)), device)
    idx = gpugrad.tensor(np.array([0, 2, 0]), device=device)
    fn, arg = {"reshape": (lambda x: x.reshape(3, 2), x), "transpose": (lambda x: x.transpose(2, 0, 1), x),
               "T": (lambda x: x.T, x2), "swapaxes": (lambda x: x.swapaxes(0, -1), x),
               "broadcast_to": (lambda x: x.broadcast_to(4, 2, 5, 3), x), "squeeze": (lambda x: x.squeeze(1), x),
               "unsqueeze": (lambda x: x.unsqueeze(-1), x), "flatten": (lambda x: x.flatten(), x),
               "slice": (lambda x: x[1:, ::2], x2), "int_index": (lambda x: x[1, -1], x2),
               "int_array_repeated": (lambda x: x[[0, 2, 0, 0]], x2),
               "bool_mask": (lambda x: x[x.data > 0], x2),
               "none_ellipsis": (lambda x: x[None, ..., 1], x2),
               "tensor_index": (lambda x: x[idx], x2)}[op]
    assert gpugrad.gradcheck(fn, [arg])


def test_concatenate_and_stack(device):
    a, b = T(rng.standard_normal((2, 3)), device), T(rng.standard_normal((4, 3)), device)
    assert gpugrad.gradcheck(lambda a, b: F.concatenate([a, b], axis=0), [a, b])
    c = T(rng.standard_normal((2, 3)), device)
    assert gpugrad.gradcheck(lambda a, c: F.stack([a, c], axis=1), [a, c])


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_and_log_softmax(device, axis):
    x = T(rng.standard_normal((3, 5)), device)
    assert gpugrad.gradcheck(lambda x: F.softmax(x, axis=axis), [x])
    assert gpugrad.gradcheck(lambda x: F.log_softmax(x, axis=axis), [x])


def test_maxout(device):
    z = T(distinct((3, 8)), device)
    assert gpugrad.gradcheck(lambda z: F.maxout(z, 4), [z])


def test_losses(device):
    logits = T(rng.standard_normal((6, 4)), device)
    labels = np.array([0, 3, 1, 1, 2, 3])
    assert gpugrad.gradcheck(lambda s: F.cross_entropy(s, labels), [logits])
    # Keep every margin away from the hinge's kink.
    scores = T(np.round(rng.standard_normal((6, 4)) * 4) / 4 + 0.1 * rng.random((6, 4)) + 0.3, device)
    assert gpugrad.gradcheck(lambda s: F.svm_loss(s, labels), [scores])
    pred, target = T(rng.standard_normal((3, 2)), device), T(rng.standard_normal((3, 2)), device)
    for reduction in ("mean", "sum", "none"):
        assert gpugrad.gradcheck(lambda p, t: F.mse_loss(p, t, reduction=reduction), [pred, target])


def test_to_device_and_cast_are_differentiable(device):
    x = T(rng.standard_normal((2, 3)), device)
    assert gpugrad.gradcheck(lambda x: x.to("cpu") * 2, [x])
    y = gpugrad.tensor(rng.standard_normal((2, 3)).astype(np.float32), device=device, requires_grad=True)
    (y.astype(np.float64) * 3).sum().backward()
    assert y.grad.dtype == np.float32 and np.all(y.grad.numpy() == 3)


def test_gradcheck_catches_a_wrong_gradient():
    class Wrong(gpugrad.Function):
        def forward(self, x):
            return x * x

        def backward(self, grad_output):
            return grad_output * 3.0  # should be 2x

    with pytest.raises(gpugrad.GradcheckError, match="input 0"):
        gpugrad.gradcheck(lambda x: Wrong()(x), [T([1.0, 2.0])])
