"""The tensor methods PyTorch users reach for: each gradient-checked in float64 where differentiable and
compared with PyTorch forward and backward, on every device."""
import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from conftest import T

torch = pytest.importorskip("torch")
rng = np.random.default_rng(21)

# name: (gpugrad call, torch call, input shape, values: "any", "distinct" (sorting, no ties), "positive",
# "above-1" or "probability")
TF = torch.nn.functional
LABELS = np.array([0, 2, 1, 2])
TARGETS = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
WEIGHT = np.array([0.5, 1.0, 2.0])
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
    # PyTorch's spellings built from gpugrad's ops (tensor_methods.py, the composed losses)
    "log1p": (lambda x: x.log1p(), lambda t: t.log1p(), (3, 4), "above-1"),
    "expm1": (lambda x: x.expm1(), lambda t: t.expm1(), (3, 4), "any"),
    "rsqrt": (lambda x: x.rsqrt(), lambda t: t.rsqrt(), (3, 4), "positive"),
    "reciprocal": (lambda x: x.reciprocal(), lambda t: t.reciprocal(), (3, 4), "positive"),
    "logsumexp": (lambda x: x.logsumexp(dim=1), lambda t: t.logsumexp(dim=1), (3, 4), "any"),
    "logsumexp-keepdim": (lambda x: gpugrad.logsumexp(x * 300, 0, keepdim=True),
                          lambda t: torch.logsumexp(t * 300, 0, keepdim=True), (3, 4), "any"),
    "var": (lambda x: x.var(dim=1), lambda t: t.var(dim=1), (3, 4), "any"),
    "var-all-population": (lambda x: x.var(unbiased=False), lambda t: t.var(unbiased=False), (3, 4), "any"),
    "std-keepdim": (lambda x: x.std(dim=(0, 1), keepdim=True, correction=0),
                    lambda t: t.std(dim=(0, 1), keepdim=True, correction=0), (2, 3, 4), "any"),
    "split": (lambda x: gpugrad.cat([p * (i + 1) for i, p in enumerate(x.split(2, dim=1))], dim=1),
              lambda t: torch.cat([p * (i + 1) for i, p in enumerate(t.split(2, dim=1))], dim=1), (3, 5), "any"),
    "split-sizes+chunk": (lambda x: x.split([1, 2], dim=0)[1].sum() + x.chunk(3, dim=1)[-1].sum(),
                          lambda t: t.split([1, 2], dim=0)[1].sum() + t.chunk(3, dim=1)[-1].sum(), (3, 5), "any"),
    "unbind+narrow+flip": (lambda x: x.unbind(1)[2] * x.narrow(0, 1, 2).flip(0).sum(),
                           lambda t: t.unbind(1)[2] * t.narrow(0, 1, 2).flip(0).sum(), (3, 4), "any"),
    "index_select+masked_fill": (lambda x: x.index_select(1, gpugrad.tensor(np.array([3, 0, 3]), device=x.device))
                                 .masked_fill(gpugrad.tensor(np.array([True, False, True]), device=x.device), 0.5),
        lambda t: t.index_select(1, torch.tensor([3, 0, 3])).masked_fill(torch.tensor([True, False, True]), 0.5),
        (2, 4), "any"),
    "transpose-two-axes": (lambda x: x.transpose(0, 2).transpose(0, 1) * 1.0,
                           lambda t: t.transpose(0, 2).transpose(0, 1) * 1.0, (2, 3, 4), "any"),
    "normalize": (lambda x: F.normalize(x, dim=1), lambda t: TF.normalize(t, dim=1), (3, 4), "any"),
    "cross_entropy-sum": (lambda x: F.cross_entropy(x, LABELS, reduction="sum"),
                          lambda t: TF.cross_entropy(t, torch.tensor(LABELS), reduction="sum"), (4, 3), "any"),
    "cross_entropy-none": (lambda x: F.cross_entropy(x, LABELS, reduction="none"),
                           lambda t: TF.cross_entropy(t, torch.tensor(LABELS), reduction="none"), (4, 3), "any"),
    "nll_loss": (lambda x: F.nll_loss(F.log_softmax(x, dim=1), LABELS),
                 lambda t: TF.nll_loss(TF.log_softmax(t, dim=1), torch.tensor(LABELS)), (4, 3), "any"),
    "bce_with_logits": (lambda x: F.binary_cross_entropy_with_logits(x, T(TARGETS, x.device, requires_grad=False)),
                        lambda t: TF.binary_cross_entropy_with_logits(t, torch.tensor(TARGETS)), (4, 3), "any"),
    "bce_with_logits-weights": (
        lambda x: F.binary_cross_entropy_with_logits(x * 40, T(TARGETS, x.device, requires_grad=False), reduction="sum",
                                                     weight=T(WEIGHT, x.device, requires_grad=False),
                                                     pos_weight=T(WEIGHT[::-1].copy(), x.device, requires_grad=False)),
        lambda t: TF.binary_cross_entropy_with_logits(t * 40, torch.tensor(TARGETS), reduction="sum",
                                                      weight=torch.tensor(WEIGHT), pos_weight=torch.tensor(WEIGHT[::-1].copy())),
        (4, 3), "any"),
    "bce": (lambda x: F.binary_cross_entropy(x, T(TARGETS, x.device, requires_grad=False), reduction="none"),
            lambda t: TF.binary_cross_entropy(t, torch.tensor(TARGETS), reduction="none"), (4, 3), "probability"),
    "l1": (lambda x: F.l1_loss(x, x.detach() * 0 + 0.1), lambda t: TF.l1_loss(t, t.detach() * 0 + 0.1), (3, 4), "any"),
    "smooth_l1": (lambda x: F.smooth_l1_loss(x, x.detach() * 0 + 0.3, beta=0.5, reduction="sum"),
                  lambda t: TF.smooth_l1_loss(t, t.detach() * 0 + 0.3, beta=0.5, reduction="sum"), (3, 4), "any"),
    "smooth_l1-beta0": (lambda x: F.smooth_l1_loss(x, x.detach() * 0 + 0.3, beta=0.0),
                        lambda t: TF.smooth_l1_loss(t, t.detach() * 0 + 0.3, beta=0.0), (3, 4), "any"),
    "huber": (lambda x: F.huber_loss(x, x.detach() * 0 - 0.2, delta=0.8, reduction="none"),
              lambda t: TF.huber_loss(t, t.detach() * 0 - 0.2, delta=0.8, reduction="none"), (3, 4), "any"),
}


def _values(shape, kind):
    if kind == "distinct":
        return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.31 - 1.0
    if kind == "probability":
        return rng.uniform(0.05, 0.95, shape)
    values = rng.uniform(-2, 2, shape) + 0.05  # away from the rounding functions' steps (with high probability)
    return np.abs(values) + 0.2 if kind == "positive" else np.maximum(values, -0.8) if kind == "above-1" else values


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
