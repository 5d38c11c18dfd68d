"""Extreme inputs stay finite and right; no numpy warnings."""
import warnings

import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from conftest import T


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        old = np.seterr(over="raise", divide="raise", invalid="raise", under="ignore")
        try:
            yield
        finally:
            np.seterr(**old)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_at_plus_minus_1000(device, dtype):
    x = gpugrad.tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype), device=device, requires_grad=True)
    y = F.sigmoid(x)
    y.sum().backward()
    values = y.numpy()
    assert values[0] == 0.0 and values[-1] == 1.0 and values[2] == 0.5
    assert values[1] == pytest.approx(np.exp(-50.0), rel=1e-6), "full relative accuracy in the left tail"
    assert np.isfinite(x.grad.numpy()).all()


def test_softmax_of_plus_minus_1000(device):
    x = T([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0]], device)
    y = F.softmax(x)
    np.testing.assert_allclose(y.numpy(), [[0, 0, 1], [0.5, 0.5, 0]])
    ls = F.log_softmax(x)
    np.testing.assert_allclose(ls.numpy(), [[-2000, -1000, 0], [-np.log(2), -np.log(2), -2000 - np.log(2)]])
    (y.sum() + ls[:, 0].sum()).backward()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_logits_of_1e8(device, dtype):
    logits = gpugrad.tensor(np.array([[1e8, 0.0, -1e8], [0.0, 1e8, 1e8]], dtype=dtype), device=device,
                            requires_grad=True)
    loss = F.cross_entropy(logits, np.array([2, 1]))
    # row 0: -log p[2] = 2e8; row 1: log(2) -> mean 1e8 + log(2)/2
    assert loss.item() == pytest.approx(1e8 + np.log(2) / 2, rel=1e-6)
    loss.backward()
    np.testing.assert_allclose(logits.grad.numpy(), [[0.5, 0, -0.5], [0, -0.25, 0.25]], atol=1e-7)


def test_tanh_elu_and_exp_tails(device):
    x = T([-1000.0, 1000.0], device)
    assert F.tanh(x).numpy().tolist() == [-1.0, 1.0]
    assert F.elu(x).numpy().tolist() == [-1.0, 1000.0]
    (F.tanh(x).sum() + F.elu(x).sum()).backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_nan_propagates_through_relu(device):
    x = gpugrad.tensor(np.array([np.nan, 1.0]), device=device)
    with np.errstate(invalid="ignore"):
        y = F.relu(x).numpy()
    assert np.isnan(y[0]) and y[1] == 1.0


def test_empty_and_zero_d(device):
    e = gpugrad.zeros(0, 3, device=device, requires_grad=True)
    assert F.relu(e).shape == (0, 3)
    assert F.sigmoid(e).sum().item() == 0.0
    s = gpugrad.tensor(0.0, device=device, requires_grad=True)
    F.sigmoid(s).backward()
    assert s.grad.item() == 0.25


def test_non_contiguous_inputs(device):
    base = np.arange(24, dtype=np.float64).reshape(4, 6) / 10 - 1.2
    x = gpugrad.tensor(base, device=device, requires_grad=True)
    view = x.T[::2]  # a strided view
    y = F.sigmoid(view)
    np.testing.assert_allclose(y.numpy(), 1 / (1 + np.exp(-base.T[::2])))
    y.sum().backward()
    s = 1 / (1 + np.exp(-base))
    expected = np.zeros_like(base)
    expected.T[::2] = (s * (1 - s)).T[::2]
    np.testing.assert_allclose(x.grad.numpy(), expected)
