"""PyTorch's spellings that gpugrad builds from its ops (``gpugrad/tensor_methods.py``, ``functions.py``,
the composed losses): each against PyTorch forward and backward, gradient-checked in float64, on every
device; the top-level names, ``nn.functional``, ``utils.data``, and the loss modules."""
import numpy as np
import pytest

import gpugrad
import gpugrad.nn.functional as F
from gpugrad import nn
from conftest import T

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(31)
LABELS = np.array([0, 2, 1, 2])
TARGETS = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
WEIGHT = np.array([0.5, 1.0, 2.0])

# name: (gpugrad call, torch call, input shape, values: "any", "positive", "above-1" or "probability")
OPS = {
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
    "index_select+masked_fill": (lambda x: x.index_select(1, gpugrad.tensor(np.array([3, 0, 3]))).masked_fill(
        gpugrad.tensor(np.array([True, False, True])), 0.5),
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
    if kind == "probability":
        return rng.uniform(0.05, 0.95, shape)
    values = rng.uniform(-2, 2, shape) + 0.05
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
    assert gpugrad.gradcheck(ours, [T(values, device)])


def test_losses_stay_finite_at_extreme_inputs(device):
    logits = T([[1e4, -1e4, 0.0]], device)
    target = T([[0.0, 1.0, 1.0]], device, requires_grad=False)
    loss = F.binary_cross_entropy_with_logits(logits, target)
    loss.backward()
    t = torch.tensor([[1e4, -1e4, 0.0]], dtype=torch.float64, requires_grad=True)
    TF.binary_cross_entropy_with_logits(t, torch.tensor([[0.0, 1.0, 1.0]], dtype=torch.float64)).backward()
    np.testing.assert_allclose(loss.item(), (1e4 + 1e4 + np.log(2)) / 3)
    np.testing.assert_allclose(logits.grad.numpy(), t.grad.numpy())
    probs = T([[0.0, 1.0, 0.5]], device)  # log(0) is clamped at -100, the gradient at most 1e12 (PyTorch's)
    bce = F.binary_cross_entropy(probs, T([[1.0, 0.0, 1.0]], device, requires_grad=False), reduction="sum")
    bce.backward()
    assert bce.item() == pytest.approx(200 + np.log(2)) and np.isfinite(probs.grad.numpy()).all()
    rows = T([[-np.inf, -np.inf], [1000.0, 1000.0]], device)
    np.testing.assert_allclose(rows.logsumexp(dim=1).numpy(), [-np.inf, 1000 + np.log(2)])


def test_bad_inputs_name_the_loss_and_what_is_wrong():
    with pytest.raises(ValueError, match=r"binary_cross_entropy: probabilities must lie in \[0, 1\], got values from"):
        F.binary_cross_entropy(T([0.5, 1.5]), T([1.0, 0.0]))
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits: logits of shape \\(2,\\) and target of shape"):
        F.binary_cross_entropy_with_logits(T([0.5, 1.5]), T([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="nll_loss: labels must lie in \\[0, 3\\)"):
        F.nll_loss(T(np.zeros((2, 3))), np.array([0, 3]))
    with pytest.raises(ValueError, match="l1_loss: reduction must be"):
        F.l1_loss(T([1.0]), T([1.0]), reduction="avg")
    with pytest.raises(ValueError, match="split: sizes \\[1, 1\\] do not add up to 3"):
        T(np.zeros(3)).split([1, 1])
    with pytest.raises(TypeError, match="masked_fill: the mask must be a boolean tensor"):
        T(np.zeros(3)).masked_fill(T(np.zeros(3)), 1.0)
    with pytest.raises(TypeError, match="gpugrad.exp: expected a tensor as the first argument, got list"):
        gpugrad.exp([1.0])


def test_top_level_names_dtypes_and_grad_mode():
    x = gpugrad.tensor(np.arange(6.0).reshape(2, 3))
    t = torch.tensor(np.arange(6.0).reshape(2, 3))
    for name in ("exp", "sqrt", "sum", "mean", "argmax", "flatten", "square", "isfinite", "t"):
        np.testing.assert_allclose(getattr(gpugrad, name)(x).numpy(), getattr(torch, name)(t).numpy())
    np.testing.assert_allclose(gpugrad.sum(x, dim=1).numpy(), torch.sum(t, dim=1).numpy())
    assert gpugrad.long == gpugrad.int64 == np.int64 and gpugrad.float == np.float32 and gpugrad.bool == np.bool_
    assert gpugrad.tensor([1, 2], dtype=gpugrad.long).dtype == np.int64 and gpugrad.is_tensor(x) and not gpugrad.is_tensor(1)
    assert gpugrad.allclose(x, x + 1e-9) and not gpugrad.allclose(x, x + 1)
    np.testing.assert_allclose(gpugrad.linspace(0, 1, 5).numpy(), torch.linspace(0, 1, 5).numpy())
    assert sorted(gpugrad.randperm(7).tolist()) == list(range(7)) and gpugrad.randperm(3).dtype == np.int64
    assert gpugrad.concat is gpugrad.cat and gpugrad.nn.functional.cross_entropy is gpugrad.functional.cross_entropy
    with gpugrad.set_grad_enabled(False):
        assert not gpugrad.is_grad_enabled()
        with gpugrad.set_grad_enabled(True):
            assert gpugrad.is_grad_enabled()
        assert not gpugrad.is_grad_enabled()
    assert gpugrad.is_grad_enabled()
    gpugrad.set_grad_enabled(False)  # as a call: from now on, as PyTorch's
    assert not gpugrad.is_grad_enabled()
    gpugrad.set_grad_enabled(True)
    with gpugrad.inference_mode():
        assert not (T([1.0]) * 2).requires_grad


def test_comparison_and_test_methods_match_torch():
    values = np.array([[1.0, np.nan, -np.inf], [0.0, 2.0, 3.0]])
    x, t = gpugrad.tensor(values), torch.tensor(values)
    for name in ("isnan", "isinf", "isfinite"):
        np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(t, name)().numpy())
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        np.testing.assert_array_equal(getattr(x, name)(2.0).numpy(), getattr(t, name)(2.0).numpy())
    assert x.isfinite().all().item() is False and x.isnan().any().item() is True
    np.testing.assert_array_equal(x.isfinite().all(dim=1).numpy(), t.isfinite().all(dim=1).numpy())
    assert x.new_zeros(2, 3).shape == (2, 3) and x.new_ones((4,)).dtype == np.float64
    assert x.new_tensor([1, 2]).dtype == np.float64 and x.new_full((2,), 7.0).tolist() == [7.0, 7.0]
    assert x.is_contiguous() and not x.T.is_contiguous() and x.nelement() == 6 and x.element_size() == 8
    assert x.is_floating_point() and not gpugrad.tensor([1, 2], dtype=gpugrad.long).is_floating_point()
    values, indices = gpugrad.tensor([3.0, 1.0, 2.0]).sort()
    assert indices.tolist() == [1, 2, 0] and gpugrad.tensor([3.0, 1.0, 2.0]).topk(1).values.tolist() == [3.0]


def test_loss_modules_match_their_functions_and_torch():
    pred, target = rng.standard_normal((5, 3)), rng.uniform(0, 1, (5, 3))
    labels = np.array([0, 1, 2, 1, 0])
    cases = [(nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), target),
             (nn.SmoothL1Loss(beta=0.3), torch.nn.SmoothL1Loss(beta=0.3), target),
             (nn.HuberLoss(delta=0.4), torch.nn.HuberLoss(delta=0.4), target),
             (nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), target),
             (nn.MSELoss(reduction="none"), torch.nn.MSELoss(reduction="none"), target),
             (nn.CrossEntropyLoss(reduction="sum"), torch.nn.CrossEntropyLoss(reduction="sum"), labels),
             (nn.NLLLoss(), torch.nn.NLLLoss(), labels)]
    for ours, theirs, y in cases:
        np.testing.assert_allclose(ours(gpugrad.tensor(pred), gpugrad.tensor(y)).numpy(),
                                   theirs(torch.tensor(pred), torch.tensor(y)).numpy(), rtol=1e-12, err_msg=repr(ours))
    probs = 1 / (1 + np.exp(-pred))
    np.testing.assert_allclose(nn.BCELoss()(gpugrad.tensor(probs), gpugrad.tensor(target)).item(),
                               torch.nn.BCELoss()(torch.tensor(probs), torch.tensor(target)).item(), rtol=1e-12)
    np.testing.assert_allclose(nn.LogSoftmax(dim=0)(gpugrad.tensor(pred)).numpy(),
                               torch.nn.LogSoftmax(dim=0)(torch.tensor(pred)).numpy(), rtol=1e-12)
    assert "delta=0.4" in repr(nn.HuberLoss(delta=0.4))


def test_composed_losses_and_new_math_run_in_float32_under_autocast(device):
    x = gpugrad.tensor(rng.standard_normal((4, 3)), dtype=gpugrad.float32, device=device, requires_grad=True)
    w = gpugrad.tensor(rng.standard_normal((3, 3)), dtype=gpugrad.float32, device=device, requires_grad=True)
    target = gpugrad.tensor(TARGETS, dtype=gpugrad.float32, device=device)
    with gpugrad.autocast("float16"):
        h = x @ w
        assert h.dtype == np.float16
        for loss in (F.binary_cross_entropy_with_logits(h, target), F.l1_loss(h, target), F.huber_loss(h, target),
                     F.nll_loss(h, LABELS), F.normalize(h), h.abs().log1p(), h.expm1(), F.cross_entropy(h, LABELS, "none")):
            assert loss.dtype == np.float32
    F.binary_cross_entropy_with_logits(h, target).backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_sequential_slices_modules_and_tensor_dataset():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    assert [type(m).__name__ for m in model.modules()] == ["Sequential", "Linear", "ReLU", "Linear"]
    assert [name for name, _ in model.named_children()] == ["0", "1", "2"]
    X, y = gpugrad.tensor(rng.standard_normal((10, 3))), gpugrad.tensor(np.arange(10) % 2, dtype=gpugrad.long)
    data = gpugrad.utils.data.TensorDataset(X, y)
    assert len(data) == 10 and data[3][1].item() == 1
    batches = list(gpugrad.utils.data.DataLoader(data, batch_size=4, shuffle=False))
    assert [len(b[0]) for b in batches] == [4, 4, 2] and batches[0][1].dtype == np.int64
    np.testing.assert_array_equal(batches[1][0].numpy(), X.numpy()[4:8].astype(np.float32))
    with pytest.raises(ValueError, match="TensorDataset: the tensors differ in length"):
        gpugrad.utils.data.TensorDataset(X, y[:3])

    class Squares(gpugrad.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.array([i, i * i], np.float32), i % 2

    assert [b[1].tolist() for b in gpugrad.utils.data.DataLoader(Squares(), batch_size=2, shuffle=False)] == [[0, 1], [0, 1]]
