"""PyTorch's spellings that gpugrad builds from its ops (``gpugrad/tensor_methods.py``, ``toplevel.py``,
the composed losses), beyond the table of ``test_tensor_ops.py`` (which compares each with PyTorch forward
and backward and gradient-checks it): extreme inputs, errors, the top-level names, ``nn.functional``,
``utils.data``, the loss modules, autocast."""
import numpy as np
import pytest

import gpugrad
import gpugrad.nn.functional as F
from gpugrad import nn
from conftest import T

torch = pytest.importorskip("torch")
from test_tensor_ops import LABELS, TARGETS  # noqa: E402 (after the skip: it imports torch too)

TF = torch.nn.functional
rng = np.random.default_rng(31)


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


def test_set_grad_enabled_as_a_decorator_applies_inside_the_function_only_as_torch():
    """Before, ``@set_grad_enabled(False)`` turned recording off for the whole program when the function was
    defined, and the next backward() failed far away."""
    for lib in (torch, gpugrad):
        @lib.set_grad_enabled(False)
        def inside(x):
            return (x * 2).requires_grad, lib.is_grad_enabled()

        x = lib.ones(2, requires_grad=True)
        assert lib.is_grad_enabled() and inside(x) == (False, False) and lib.is_grad_enabled(), lib.__name__
        assert (x * 2).requires_grad and inside(x) == (False, False)  # again: each call restores the mode


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
                     F.nll_loss(h, LABELS), F.normalize(h), h.abs().log1p(), h.expm1(), F.cross_entropy(h, LABELS, reduction="none")):
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


def test_retain_grad_and_tensor_hooks_match_torch(device):
    values = np.array([1.0, -2.0, 3.0])
    results = []
    for lib, make in ((torch, lambda: torch.tensor(values, requires_grad=True)), (gpugrad, lambda: T(values, device))):
        x = make()
        h = x * 2
        h.retain_grad()
        doubled = h.register_hook(lambda g: g * 2)  # after retain_grad, yet .grad sees its result (PyTorch's order)
        y = (h.tanh() ** 2).sum()
        y.retain_grad()
        seen = []
        x.register_hook(lambda g: seen.append(g.numpy().copy()))
        y.backward(retain_graph=True)
        doubled.remove()
        y.backward()  # the retained gradients add up, as a leaf's
        results.append([h.grad.numpy(), y.grad.numpy(), x.grad.numpy(), *seen, float(h.retains_grad), float(x.retains_grad)])
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    with pytest.raises(RuntimeError, match="register_hook: the tensor does not require grad"):
        gpugrad.tensor([1.0]).register_hook(print)


def test_a_tensor_hook_inside_a_captured_step_is_refused():
    w = T([1.0, 2.0])

    def step(x):
        h = x * w
        h.retain_grad()
        loss = h.sum()
        loss.backward()
        return loss
    run = gpugrad.compile(step, warmup=0)
    with pytest.raises(gpugrad.capture.CaptureError, match=r"retain_grad\(\) inside a captured step"):
        run(T([1.0, 1.0], requires_grad=False))


def test_forward_hooks_parameter_list_unflatten_and_init_match_torch():
    rng_values = np.random.default_rng(5).standard_normal((4, 6))
    results = []
    for lib in (torch, gpugrad):
        model = lib.nn.Sequential(lib.nn.Linear(6, 5), lib.nn.ReLU(), lib.nn.Linear(5, 2))
        with lib.no_grad():
            for i, p in enumerate(model.parameters()):
                p.copy_(lib.from_numpy(np.linspace(-1, 1, p.numel()).reshape(tuple(p.shape)) * (i + 1)).float())
        features = []
        keep = model[0].register_forward_hook(lambda m, args, out: features.append(out.detach().numpy().copy()))
        model[0].register_forward_pre_hook(lambda m, args: (args[0] * 2,))
        model[2].register_forward_hook(lambda m, args, out: out + 1)
        x = lib.from_numpy(rng_values).float()
        first = model(x).detach().numpy()
        keep.remove()
        second = model(x).detach().numpy()
        params = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2)), lib.zeros(3)])
        unflat = lib.nn.Unflatten(1, (2, 3))(lib.zeros(4, 6))
        weights = lib.zeros(3, 2)
        lib.nn.init.ones_(weights)
        results.append([first, second, *features, len(params), len(list(params)), float(params[1].requires_grad),
                        list(unflat.shape), weights.numpy().copy()])
    for ours, theirs in zip(results[1], results[0]):
        np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64), rtol=1e-6)
    w = gpugrad.zeros(2000)
    gpugrad.manual_seed(0)
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=1.5)
    assert w.numpy().min() >= -0.5 and w.numpy().max() <= 1.5 and 0.3 < w.numpy().mean() < 0.6


def test_a_forward_hook_inside_a_captured_step_is_refused():
    layer = nn.Linear(3, 2)
    layer.register_forward_hook(lambda m, args, out: None)
    run = gpugrad.compile(lambda x: layer(x).sum(), warmup=0)
    with pytest.raises(gpugrad.capture.CaptureError, match="Linear has a forward hook"):
        run(gpugrad.ones(4, 3))


def test_subset_and_random_split():
    X, y = gpugrad.tensor(np.arange(20.0).reshape(10, 2)), gpugrad.tensor(np.arange(10), dtype=gpugrad.long)
    data = gpugrad.utils.data.TensorDataset(X, y)
    train, test = gpugrad.utils.data.random_split(data, [0.7, 0.3], seed=1)
    assert (len(train), len(test)) == (7, 3) and sorted(train.indices + test.indices) == list(range(10))
    assert [int(t[1].item()) for t in (train[0], test[0])] == [train.indices[0], test.indices[0]]
    again, _ = gpugrad.utils.data.random_split(data, [7, 3], seed=1)
    assert again.indices == train.indices
    assert [len(s) for s in gpugrad.utils.data.random_split(data, [0.34, 0.33, 0.33])] == [4, 3, 3]  # as PyTorch
    labels = [b[1].tolist() for b in gpugrad.utils.data.DataLoader(test, batch_size=3, shuffle=False)]
    assert labels == [test.indices]
    with pytest.raises(ValueError, match="random_split: lengths \\[5, 3\\] do not add up to the data set's 10"):
        gpugrad.utils.data.random_split(data, [5, 3])
    assert [len(s) for s in torch.utils.data.random_split(range(10), [0.34, 0.33, 0.33])] == [4, 3, 3]
