"""The tensor methods PyTorch users reach for: each gradient-checked in float64 where differentiable and
compared with PyTorch forward and backward, on every device."""
import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from conftest import T

torch = pytest.importorskip("torch")
rng = np.random.default_rng(21)

# name: (gpugrad call, torch call, input shape, values: "any" or "distinct" (sorting, no ties) or "positive")
OPS = {
    "sin": (lambda x: x.sin(), lambda t: t.sin(), (3, 4), "any"),
    "cos": (lambda x: x.cos(), lambda t: t.cos(), (3, 4), "any"),
    "erf": (lambda x: x.erf(), lambda t: t.erf(), (3, 4), "any"),
    "sign": (lambda x: x.sign() * x, lambda t: t.sign() * t, (3, 4), "any"),
    "floor+ceil+round": (lambda x: x.floor() + x.ceil() + x.round() + x, lambda t: t.floor() + t.ceil() + t.round() + t,
                         (3, 4), "any"),
    "cumsum": (lambda x: x.cumsum(1), lambda t: t.cumsum(1), (3, 4), "any"),
    "prod": (lambda x: x.prod(dim=1), lambda t: t.prod(dim=1), (3, 4), "any"),
    "prod-all": (lambda x: x.prod(), lambda t: t.prod(), (2, 3), "any"),
    "norm": (lambda x: x.norm(), lambda t: t.norm(), (3, 4), "any"),
    "norm-dim-1": (lambda x: x.norm(p=1, dim=0, keepdim=True), lambda t: t.norm(p=1, dim=0, keepdim=True), (3, 4), "any"),
    "norm-3": (lambda x: x.norm(p=3, dim=1), lambda t: t.norm(p=3, dim=1), (3, 4), "any"),
    "gather": (lambda x: x.gather(1, np.array([[0, 2, 2], [1, 1, 0], [3, 0, 1]])),
               lambda t: t.gather(1, torch.tensor([[0, 2, 2], [1, 1, 0], [3, 0, 1]])), (3, 4), "any"),
    "sort": (lambda x: x.sort(dim=1, descending=True)[0], lambda t: t.sort(dim=1, descending=True)[0], (3, 4),
             "distinct"),
    "topk": (lambda x: x.topk(2, dim=0)[0], lambda t: t.topk(2, dim=0)[0], (3, 4), "distinct"),
    "tril": (lambda x: x.tril(), lambda t: t.tril(), (2, 3, 4), "any"),
    "triu-1": (lambda x: x.triu(1), lambda t: t.triu(1), (3, 4), "any"),
    "pad": (lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), lambda t: torch.nn.functional.pad(t, (1, 2, 0, 1), value=0.5),
            (3, 4), "any"),
    "repeat": (lambda x: x.repeat(2, 1, 3), lambda t: t.repeat(2, 1, 3), (3, 4), "any"),
    "remainder": (lambda x: x % 1.5 + (x * 3) % (x.abs() + 1), lambda t: t % 1.5 + (t * 3) % (t.abs() + 1), (3, 4),
                  "any"),
    "einsum": (lambda x: gpugrad.einsum("ij,jk->ik", x, x.T), lambda t: torch.einsum("ij,jk->ik", t, t.T), (3, 4),
               "any"),
    "einsum-trace-sum": (lambda x: gpugrad.einsum("ij->j", x) + gpugrad.einsum("ij,kj->", x, x),
                         lambda t: torch.einsum("ij->j", t) + torch.einsum("ij,kj->", t, t), (3, 4), "any"),
}


def _values(shape, kind):
    if kind == "distinct":
        return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.31 - 1.0
    return rng.uniform(-2, 2, shape) + 0.05  # away from the rounding functions' steps (with high probability)


@pytest.mark.parametrize("name", list(OPS))
def test_op_matches_torch_forward_and_backward(device, name):
    ours, theirs, shape, kind = OPS[name]
    values = _values(shape, kind)
    x, t = T(values, device), torch.tensor(values, requires_grad=True)
    y, ty = ours(x), theirs(t)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = rng.standard_normal(ty.shape)
    y.backward(gpugrad.tensor(upstream, device=device))
    ty.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    if not name.startswith(("floor", "sign")):
        assert gpugrad.gradcheck(ours, [T(values, device)])


def test_prod_gradient_with_zeros_matches_torch():
    values = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 4.0], [1.0, 2.0, 3.0]])
    x, t = T(values), torch.tensor(values, requires_grad=True)
    x.prod(dim=1).sum().backward()
    t.prod(dim=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_scatter_add_argsort_one_hot_randint_and_logic(device):
    x, t = T(np.zeros((3, 4)), device), torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    src_values = rng.standard_normal((2, 4))
    src, tsrc = T(src_values, device), torch.tensor(src_values, requires_grad=True)
    index = np.array([[0, 1, 2, 0], [0, 2, 0, 1]])
    y, ty = x.scatter_add(0, index, src), t.scatter_add(0, torch.tensor(index), tsrc)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy())
    upstream = rng.standard_normal((3, 4))
    y.backward(gpugrad.tensor(upstream, device=device))
    ty.backward(torch.tensor(upstream))
    np.testing.assert_allclose(src.grad.numpy(), tsrc.grad.numpy())
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
    values = rng.standard_normal((4, 5))
    np.testing.assert_array_equal(T(values, device).argsort(dim=0).numpy(), torch.tensor(values).argsort(dim=0).numpy())
    labels = np.array([2, 0, 3])
    np.testing.assert_array_equal(F.one_hot(gpugrad.tensor(labels, device=device), 5).numpy(),
                                  torch.nn.functional.one_hot(torch.tensor(labels), 5).numpy())
    gpugrad.manual_seed(3)
    draws = gpugrad.randint(2, 9, (1000,), device=device).numpy()
    assert draws.min() == 2 and draws.max() == 8 and draws.dtype == np.int64
    a, b = gpugrad.tensor(np.array([True, False, True]), device=device), gpugrad.tensor(np.array([True, True, False]),
                                                                                       device=device)
    assert (a & b).numpy().tolist() == [True, False, False] and (a | b).numpy().tolist() == [True, True, True]
    assert (~a).numpy().tolist() == [False, True, False] and (a ^ b).numpy().tolist() == [False, True, True]
    assert (gpugrad.tensor(np.array([7, -7]), device=device) // 2).numpy().tolist() == [3, -4]
    with pytest.raises(TypeError, match="&: needs bool or integer tensors"):
        gpugrad.ones(2, device=device) & gpugrad.ones(2, device=device)
    with pytest.raises(ValueError, match="einsum: '...' is not supported"):
        gpugrad.einsum("...i->i", gpugrad.ones(2, 3, device=device))
