"""The lecture's worked examples, with its numbers."""
import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from conftest import T


def test_add_mul_gate(device):
    x, y, z = (T(v, device) for v in (-2.0, 5.0, -4.0))
    f = (x + y) * z
    f.backward()
    assert f.item() == -12
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)


def test_sigmoid_neuron(device):
    w = T([2.0, -3.0, -3.0], device)
    x = T([-1.0, -2.0], device)
    f = F.sigmoid(w[0] * x[0] + w[1] * x[1] + w[2])
    f.backward()
    assert f.item() == pytest.approx(0.7310585786)  # sigma(1)
    np.testing.assert_allclose(w.grad.numpy(), [-0.19661193, -0.39322387, 0.19661193], rtol=1e-7)
    np.testing.assert_allclose(x.grad.numpy(), [0.39322387, -0.58983580], rtol=1e-7)
    # The slides round to two digits: dw = [-0.20, -0.39, 0.20], dx = [0.39, -0.59].
    np.testing.assert_allclose(np.round(w.grad.numpy(), 2), [-0.20, -0.39, 0.20])


def test_max_router_example(device):
    x, y, z, w = (T(v, device) for v in (3.0, -4.0, 2.0, -1.0))
    f = (x * y + F.maximum(z, w)) * 2
    f.backward()
    assert f.item() == -20
    assert [t.grad.item() for t in (x, y, z, w)] == [-8.0, 6.0, 2.0, 0.0]


def test_l2_of_matrix_vector_product(device):
    W = T([[0.1, 0.5], [-0.3, 0.8]], device)
    x = T([0.2, 0.4], device)
    q = W @ x
    f = (q * q).sum()
    f.backward()
    np.testing.assert_allclose(q.numpy(), [0.22, 0.26])
    assert f.item() == pytest.approx(0.116)
    np.testing.assert_allclose(W.grad.numpy(), [[0.088, 0.176], [0.104, 0.208]])
    np.testing.assert_allclose(x.grad.numpy(), [-0.112, 0.636])


def _lecture_numpy_loop(x, y, w1, w2, steps, lr):
    losses, grads = [], None
    for _ in range(steps):
        h = 1 / (1 + np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        losses.append(np.square(y_pred - y).sum())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_w1 = x.T.dot(grad_h * h * (1 - h))
        grads = (grad_w1, grad_w2)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return losses, grads


def test_two_layer_training_loop_matches_numpy(device):
    rng = np.random.default_rng(0)
    N, D_in, H, D_out = 64, 1000, 100, 10
    x, y = rng.standard_normal((N, D_in)), rng.standard_normal((N, D_out))
    w1, w2 = rng.standard_normal((D_in, H)), rng.standard_normal((H, D_out))
    ref_losses, ref_grads = _lecture_numpy_loop(x, y, w1.copy(), w2.copy(), 20, 1e-4)

    X, Y = gpugrad.tensor(x, device=device), gpugrad.tensor(y, device=device)
    W1 = gpugrad.tensor(w1, device=device, requires_grad=True)
    W2 = gpugrad.tensor(w2, device=device, requires_grad=True)
    losses = []
    for _ in range(20):
        h = (X @ W1).sigmoid()
        loss = ((h @ W2 - Y) ** 2).sum()
        losses.append(loss.item())
        W1.grad = W2.grad = None
        loss.backward()
        grads = (W1.grad.numpy(), W2.grad.numpy())
        with gpugrad.no_grad():
            W1 -= 1e-4 * W1.grad
            W2 -= 1e-4 * W2.grad
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10)
    for got, want in zip(grads, ref_grads):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    assert losses[-1] < losses[0]


def test_three_layer_sigmoid_network_learns_the_lecture_data(device):
    # Datatrain (x1, x2, x3, o1, o2): (1,2,3,4,5), (3,2,1,5,6), (1,5,7,8,6); a 3-4-4-2 network.
    data = np.array([[1, 2, 3, 4, 5], [3, 2, 1, 5, 6], [1, 5, 7, 8, 6]], dtype=np.float64)
    X = gpugrad.tensor(data[:, :3], device=device)
    Y = gpugrad.tensor(data[:, 3:], device=device)
    gpugrad.manual_seed(1)
    sizes = [3, 4, 4, 2]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        W = gpugrad.randn(fan_out, fan_in, dtype=np.float64, device=device) * (1 / np.sqrt(fan_in))
        params += [W.detach().requires_grad_(), gpugrad.zeros(fan_out, dtype=np.float64, device=device, requires_grad=True)]
    W1, b1, W2, b2, W3, b3 = params
    first = None
    for step in range(3000):
        h1 = F.sigmoid(X @ W1.T + b1)
        h2 = F.sigmoid(h1 @ W2.T + b2)
        out = h2 @ W3.T + b3
        loss = F.mse_loss(out, Y)
        first = loss.item() if first is None else first
        for p in params:
            p.grad = None
        loss.backward()
        with gpugrad.no_grad():
            for p in params:
                p -= 0.1 * p.grad
    assert loss.item() < 1e-3 * first
    np.testing.assert_allclose(out.numpy(), data[:, 3:], atol=0.1)
