"""What a PyTorch user reaches for, against PyTorch: dim=/keepdim=, argmax, clamp, view, the *_like
constructors, from_numpy and DLPack, dataset objects, ModuleList/ModuleDict/Identity/Flatten,
buffers, apply, gradient clipping, and the CLI's --version and --help."""
import subprocess
import sys

import numpy as np
import pytest

import gpugrad
from gpugrad import nn
from gpugrad.utils import data
from conftest import T

torch = pytest.importorskip("torch")
rng = np.random.default_rng(3)


def test_reductions_take_dim_and_keepdim_and_argmax_matches_torch(device):
    values = rng.standard_normal((3, 4, 5))
    x, t = T(values, device), torch.tensor(values)
    for name in ("sum", "mean"):
        np.testing.assert_allclose(getattr(x, name)(dim=1, keepdim=True).numpy(),
                                   getattr(t, name)(dim=1, keepdim=True).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(x.max(dim=2).values.numpy(), t.max(dim=2).values.numpy())
    np.testing.assert_array_equal(x.max(2).indices.numpy(), t.max(2).indices.numpy())
    np.testing.assert_array_equal(x.argmax(dim=1).numpy(), t.argmax(dim=1).numpy())
    np.testing.assert_array_equal(x.argmin(dim=-1, keepdim=True).numpy(), t.argmin(dim=-1, keepdim=True).numpy())
    assert x.argmax().item() == t.argmax().item() and x.argmax().dtype == np.int64
    with pytest.raises(TypeError, match="give axis= or dim=, not both"):
        x.sum(axis=0, dim=1)
    with pytest.raises(ValueError, match="argmax: the tensor of shape \\(0,\\) is empty"):
        gpugrad.zeros(0, device=device).argmax()


def test_clamp_matches_torch_forward_and_backward(device):
    values = np.array([-2.0, -1.0, 0.5, 1.0, 3.0])
    upstream = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    for low, high in ((-1.0, 1.0), (None, 0.7), (0.0, None)):
        x, t = T(values, device), torch.tensor(values, requires_grad=True)
        y, ty = x.clamp(low, high), t.clamp(low, high)
        y.backward(gpugrad.tensor(upstream, device=device))
        ty.backward(torch.tensor(upstream))
        np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
        np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())  # inclusive at the bounds, as torch
    assert gpugrad.gradcheck(lambda a: a.clip(-0.5, 0.5), [T(np.array([-0.9, -0.2, 0.3, 0.8]), device)])
    with pytest.raises(ValueError, match="clamp: give min, max or both"):
        T(values, device).clamp()


def test_view_numel_dim_and_conversions(device):
    x = T(np.arange(6.0).reshape(2, 3), device)
    assert x.view(3, 2).shape == (3, 2) and x.numel() == 6 and x.dim() == 2
    with pytest.raises(RuntimeError, match="view: the tensor of shape \\(3, 2\\) is not contiguous; use reshape"):
        x.T.view(6)
    assert x.long().dtype == np.int64 and x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    assert x.float().dtype == np.float32 and x.double().dtype == np.float64


def test_like_constructors_from_numpy_and_dlpack():
    t = gpugrad.tensor(np.arange(6.0).reshape(2, 3))
    assert gpugrad.zeros_like(t).numpy().tolist() == [[0.0] * 3] * 2 and gpugrad.ones_like(t).dtype == np.float64
    assert gpugrad.full_like(t, 2.5, dtype=np.float32).numpy().tolist() == [[2.5] * 3] * 2
    assert gpugrad.empty_like(t).shape == (2, 3) and gpugrad.rand_like(t).shape == (2, 3)
    assert gpugrad.randn_like(t, requires_grad=True).requires_grad
    array = np.ones(3)
    shared = gpugrad.from_numpy(array)
    array[0] = 7
    assert shared.numpy()[0] == 7
    source = torch.arange(6.0).reshape(2, 3)
    ours = gpugrad.from_dlpack(source)  # zero copy: a change in torch shows here
    source[0, 0] = 100
    assert ours.numpy()[0, 0] == 100 and ours.shape == (2, 3)
    back = torch.from_dlpack(ours)
    ours.data[1, 1] = -1
    assert back[1, 1].item() == -1
    assert np.from_dlpack(ours)[0, 0] == 100
    with pytest.raises(TypeError, match="from_dlpack: list is not a DLPack producer"):
        gpugrad.from_dlpack([1, 2])


def test_dataloader_takes_a_dataset_object():
    class Squares:
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float64), i % 3

    batches = list(data.DataLoader(Squares(), batch_size=4, shuffle=False))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert batches[0][0].dtype == np.float32 and batches[0][0].numpy()[3].tolist() == [3, 9]
    assert batches[0][1].numpy().tolist() == [0, 1, 2, 0]
    with pytest.raises(TypeError, match="expected arrays X, y or a dataset with __len__ and __getitem__"):
        data.DataLoader(5, batch_size=2)


def test_containers_identity_flatten_buffers_and_apply(device):
    layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 2)])
    blocks = nn.ModuleDict({"head": nn.Linear(2, 1), "skip": nn.Identity()})
    assert len(layers) == 2 and len(layers.parameters()) == 4 and list(blocks) == ["head", "skip"]
    assert [name for name, _ in blocks.named_parameters()] == ["head.weight", "head.bias"]
    values = rng.standard_normal((2, 3, 4, 5))
    for start, end in ((1, -1), (0, 1), (2, 3)):
        np.testing.assert_array_equal(nn.Flatten(start, end)(T(values, device)).numpy(),
                                      torch.nn.Flatten(start, end)(torch.tensor(values)).numpy())

    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2)
            self.register_buffer("seen", gpugrad.zeros(2))

    model = Counter()
    assert list(model.state_dict()) == ["seen", "linear.weight", "linear.bias"]  # PyTorch's order
    assert [name for name, _ in model.named_parameters()] == ["linear.weight", "linear.bias"]
    model.seen = gpugrad.ones(2)
    assert model.state_dict()["seen"].numpy().tolist() == [1, 1]
    other = Counter()
    other.load_state_dict(model.state_dict())
    assert other.seen.numpy().tolist() == [1, 1]
    assert model.to(device).seen.device.startswith(device)
    visited = []
    model.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "Counter"]
    with pytest.raises(KeyError, match="attribute 'linear' already exists"):
        model.register_buffer("linear", gpugrad.zeros(1))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(device, norm_type):
    grads = [rng.standard_normal((3, 4)) * 5, rng.standard_normal(4)]
    ours = [nn.Parameter(gpugrad.tensor(np.zeros_like(g), device=device)) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad = gpugrad.tensor(g, device=device)
        q.grad = torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, 1.5, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type)
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)
    nn.utils.clip_grad_value_(ours, 0.1)
    torch.nn.utils.clip_grad_value_(theirs, 0.1)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)
        assert np.abs(p.grad.numpy()).max() <= 0.1


def test_cli_version_and_help_with_defaults_and_choices():
    version = subprocess.run([sys.executable, "-m", "gpugrad", "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"gpugrad {gpugrad.__version__}"
    shown = subprocess.run([sys.executable, "-m", "gpugrad", "train", "--help"], capture_output=True, text=True).stdout
    assert "(default: digits)" in " ".join(shown.split()) and "one of relu, sigmoid, tanh, leaky_relu, elu" in shown
    assert "one of cross_entropy, svm, mse" in " ".join(shown.split()) and "(default: 30)" in shown


@pytest.mark.gpu
def test_dlpack_with_torch_on_the_gpu(cuda):
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch build has no CUDA")
    source = torch.arange(6.0, device="cuda").reshape(2, 3)
    ours = gpugrad.from_dlpack(source)
    assert ours.device == "cuda:0"
    source[0, 0] = 100
    assert ours.numpy()[0, 0] == 100  # zero copy
    back = torch.from_dlpack(ours)
    assert back.device.type == "cuda" and back[0, 0].item() == 100


def test_pytorch_spellings_of_shape_ops_and_dim_keywords(device):
    values = rng.standard_normal((2, 3, 4))
    x, t = T(values, device), torch.tensor(values)
    np.testing.assert_array_equal(x.permute(2, 0, 1).numpy(), t.permute(2, 0, 1).numpy())
    np.testing.assert_array_equal(x[0].t().numpy(), t[0].t().numpy())
    np.testing.assert_array_equal(T(np.ones((3, 1)), device).expand(2, -1, 4).numpy(), torch.ones(3, 1).expand(2, -1, 4))
    assert x.permute(2, 0, 1).contiguous().data.flags.c_contiguous and x.contiguous() is x
    assert x.to(np.float32).dtype == np.float32 and x.to(device) is x
    np.testing.assert_allclose(gpugrad.functional.softmax(x, dim=1).numpy(), torch.softmax(t, dim=1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(gpugrad.functional.log_softmax(x, dim=0).numpy(), torch.log_softmax(t, dim=0).numpy(),
                               rtol=1e-12)
    assert gpugrad.functional.cat([x, x], dim=2).shape == tuple(torch.cat([t, t], dim=2).shape)
    assert gpugrad.functional.stack([x, x], dim=1).shape == tuple(torch.stack([t, t], dim=1).shape)
    assert x.unsqueeze(dim=1).shape == tuple(t.unsqueeze(dim=1).shape)
    assert T(np.ones((1, 3)), device).squeeze(dim=0).shape == (3,)
