"""The public Tensor API: creation, dtypes, devices, conversion, operators, conventions, errors."""
import subprocess
import sys
import types

import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from gpugrad.backend import CudaUnavailableError, get_backend
from conftest import T


def test_dtype_rules(device):
    assert gpugrad.tensor([1, 2, 3], device=device).dtype == np.float32
    assert gpugrad.tensor(2.5, device=device).dtype == np.float32
    assert gpugrad.tensor(np.arange(3), device=device).dtype == np.int64
    assert gpugrad.tensor(np.ones(2), device=device).dtype == np.float64
    assert gpugrad.tensor([1, 2], dtype="float64", device=device).dtype == np.float64
    x = gpugrad.tensor([1.0, 2.0], device=device)
    for y in (x + 1.5, 2.0 * x, x / 3, x ** 2, 1 - x, x * np.float64(2)):
        assert y.dtype == np.float32, "a Python scalar must never upcast a float32 tensor"


def test_float16_works_and_accumulates_in_float32(device):
    x = gpugrad.tensor(np.full(4096, 0.1, dtype=np.float16), device=device, requires_grad=True)
    s = x.sum()
    assert s.dtype == np.float16
    assert abs(s.item() - 409.6) < 0.5  # a float16 accumulator would stall at 256
    s.backward()
    assert x.grad.dtype == np.float16
    assert F.softmax(x.reshape(64, 64)).dtype == np.float16


def test_creation_functions(device):
    gpugrad.manual_seed(3)
    a = gpugrad.randn(2, 3, device=device)
    gpugrad.manual_seed(3)
    b = gpugrad.randn((2, 3), device=device)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.shape == (2, 3) and a.dtype == np.float32 and a.device.startswith(device)
    assert gpugrad.zeros(2, device=device).numpy().tolist() == [0, 0]
    assert gpugrad.ones(1, 2, dtype=np.float64, device=device).dtype == np.float64
    assert gpugrad.full((2,), 7, device=device).numpy().tolist() == [7, 7]
    assert gpugrad.eye(2, device=device).numpy().tolist() == [[1, 0], [0, 1]]
    assert gpugrad.arange(3, device=device).numpy().tolist() == [0, 1, 2]
    r = gpugrad.rand(1000, device=device).numpy()
    assert 0 <= r.min() and r.max() < 1


def test_properties_and_conversion(device):
    x = gpugrad.tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True, name="x")
    assert x.shape == (2, 2) and x.ndim == 2 and x.is_leaf and x.requires_grad
    y = x * 2
    assert not y.is_leaf
    assert y.item if True else None
    assert x[1, 1].item() == 4.0
    n = x.numpy()
    n[0, 0] = 100
    assert x.numpy()[0, 0] == 1.0, "numpy() is a copy"
    x.data[0, 0] = 5.0
    assert x.numpy()[0, 0] == 5.0, "writing into .data changes the tensor"
    assert not x.detach().requires_grad
    assert x.cpu().device == "cpu"
    assert "grad_fn=<Mul>" in repr(y) and "requires_grad=True" in repr(x) and "name='x'" in repr(x)
    assert x.T.shape == (2, 2)


def test_comparisons_do_not_require_grad(device):
    x = T([1.0, 2.0, 3.0], device)
    for m in (x > 2, x >= 2, x < 2, x <= 2, x == 2, x != 2):
        assert not m.requires_grad and m.dtype == np.bool_
    assert (x > 1.5).numpy().tolist() == [False, True, True]


def test_boolean_mask_and_integer_array_indexing(device):
    x = T([1.0, -2.0, 3.0], device)
    y = x[x > 0]
    assert y.numpy().tolist() == [1.0, 3.0]
    z = x[gpugrad.tensor(np.array([2, 2]), device=device)].sum()
    z.backward()
    assert x.grad.numpy().tolist() == [0, 0, 2]


def test_relu_gradient_at_zero_is_zero(device):
    x = T([0.0, -0.0, 1.0, -1.0], device)
    F.relu(x).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0, 1.0, 0.0]


def test_maximum_and_minimum_split_ties_equally(device):
    for f in (F.maximum, F.minimum):
        a, b = T([2.0, 1.0, 3.0], device), T([2.0, 5.0, 0.0], device)
        f(a, b).sum().backward()
        expected_a = [0.5, 0.0, 1.0] if f is F.maximum else [0.5, 1.0, 0.0]
        assert a.grad.numpy().tolist() == expected_a
        assert b.grad.numpy().tolist() == [1 - v for v in expected_a]


def test_max_and_min_reductions_split_ties_equally(device):
    x = T([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], device)
    x.max().backward()
    assert x.grad.numpy().tolist() == [[0, 0.5, 0.5], [0, 0, 0]]
    x.grad = None
    x.min(axis=1).sum().backward()
    assert x.grad.numpy().tolist() == [[1, 0, 0], [0, 1, 0]]
    x.grad = None
    x.max(axis=1, keepdims=True).sum().backward()
    assert x.grad.numpy().tolist() == [[0, 0.5, 0.5], [0.5, 0, 0.5]]


def test_device_strings():
    assert get_backend("cpu").name == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        get_backend("tpu")
    with pytest.raises(ValueError, match="unknown device 'cuda:x'"):
        get_backend("cuda:x")


def test_import_never_imports_cupy():
    code = "import sys, gpugrad, numpy; gpugrad.tensor([1.0]) + 1; print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cuda_without_cupy_says_what_to_install(monkeypatch):
    import gpugrad.backend as backend_module
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    monkeypatch.setattr(backend_module, "_CUDA", {})
    with pytest.raises(CudaUnavailableError, match=r"needs CuPy, which is not installed.*gpugrad\[cuda12\]"):
        gpugrad.zeros(2, device="cuda")


def test_cuda_with_cupy_but_no_device(monkeypatch):
    import gpugrad.backend as backend_module

    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(backend_module, "_CUDA", {})
    with pytest.raises(CudaUnavailableError, match="CuPy is installed but no CUDA GPU is visible"):
        gpugrad.tensor([1.0], device="cuda:0")


@pytest.mark.gpu
def test_mixing_devices_names_both(cuda):
    a = gpugrad.zeros(2)
    b = gpugrad.zeros(2, device="cuda")
    with pytest.raises(gpugrad.DeviceMismatchError, match="cpu and cuda:0"):
        a + b
    with pytest.raises(gpugrad.DeviceMismatchError, match="cuda:0"):
        b + np.zeros(2, dtype=np.float32)


def test_error_messages_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\).*\(4,\)"):
        gpugrad.zeros(2, 3).reshape(4)
    with pytest.raises(ValueError, match=r"broadcast_to: cannot broadcast shape \(3,\) to \(2,\)"):
        gpugrad.zeros(3).broadcast_to(2)
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range"):
        gpugrad.zeros(2, 3).sum(axis=2)
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\) does not match weight of shape \(4, 5\)"):
        F.linear(gpugrad.zeros(2, 3), gpugrad.zeros(4, 5))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must lie in \[0, 3\)"):
        F.cross_entropy(gpugrad.zeros(2, 3), np.array([0, 3]))
    with pytest.raises(TypeError, match="cross_entropy: labels must be integer"):
        F.cross_entropy(gpugrad.zeros(2, 3), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"cross_entropy: expected scores of shape \(N, C\) and labels of shape \(N,\)"):
        F.cross_entropy(gpugrad.zeros(2, 3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="maxout: last dimension 5"):
        F.maxout(gpugrad.zeros(2, 5), 2)
    with pytest.raises(ValueError, match=r"mse_loss: pred of shape \(2,\) and target of shape \(3,\)"):
        F.mse_loss(gpugrad.zeros(2), gpugrad.zeros(3))
    with pytest.raises(ValueError, match="linear: unknown activation .gelu.; choose from None, .relu., .sigmoid."):
        F.linear(gpugrad.zeros(2, 3), gpugrad.zeros(4, 3), activation="gelu")
    with pytest.raises(ValueError, match=r"stack: all tensors need the same shape"):
        F.stack([gpugrad.zeros(2), gpugrad.zeros(3)])
    with pytest.raises(ValueError, match=r"item\(\) needs a tensor with one element, got shape \(2,\)"):
        gpugrad.zeros(2).item()
    with pytest.raises(ValueError, match=r"Tensor.T is for 2-D tensors, got shape \(2, 3, 4\)"):
        gpugrad.zeros(2, 3, 4).T
    assert gpugrad.zeros(2, 1).squeeze(0).shape == (2, 1)  # PyTorch's rule: an axis of another size stays
    with pytest.raises(IndexError, match=r"indexing a tensor of shape \(2,\)"):
        gpugrad.zeros(2)[5]
    with pytest.raises(TypeError, match="Add: unsupported operand of type str"):
        gpugrad.zeros(2) + "a"
    with pytest.raises(ValueError, match="set_matmul_precision: expected one of"):
        gpugrad.set_matmul_precision("medium")


def test_numpy_scalars_go_where_the_tensor_is(device):
    x = gpugrad.tensor([1.0, 2.0], device=device)
    y = x * np.float64(2) + np.float32(1) - np.int64(1)
    assert y.device == x.device and y.dtype == np.float32 and y.numpy().tolist() == [2.0, 4.0]
    if device != "cpu":  # an array (not a scalar) on the host is refused: moving it is the user's call
        with pytest.raises(gpugrad.DeviceMismatchError, match="got an array on cpu and a tensor on cuda"):
            x + np.ones(2)
