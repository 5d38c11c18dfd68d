"""The idioms of ordinary PyTorch programs (issue 27), each equal to PyTorch: values, dtypes, gradients, on both
devices."""
import numpy as np
import pytest
import torch

import gpugrad
import gpugrad.functional as F
from gpugrad import nn, optim

RNG = np.random.default_rng(3)


def G(values, device, requires_grad=False, dtype=None):
    array = np.asarray(values) if dtype is None else np.asarray(values, dtype=dtype)
    return gpugrad.tensor(array, dtype=array.dtype, device=device, requires_grad=requires_grad)


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def test_size_max_min_and_their_index_pairs(device):
    a = RNG.standard_normal((3, 4))
    a[1, 2] = a[1, 0] = a[1].max() + 1  # a tie
    ours, theirs = G(a, device, True), torch.tensor(a, requires_grad=True)
    assert ours.size() == tuple(theirs.size()) and ours.size(1) == theirs.size(1) == 4 and ours.size(-2) == 3
    for lib, x, scale in ((gpugrad, ours, G(np.arange(3.0), device)), (torch, theirs, torch.arange(3.0).double())):
        values, indices = x.max(1)
        (values * scale + lib.min(x, 0).values.sum()).sum().backward()
    assert np.array_equal(_np(ours.max(1).indices), _np(theirs.max(1).indices))
    assert np.array_equal(_np(gpugrad.max(ours, 1)[1]), _np(torch.max(theirs, 1)[1]))  # x.max(1)[1] is the index
    assert np.allclose(ours.grad.numpy(), _np(theirs.grad))
    assert np.allclose(_np(ours.max(dim=0, keepdim=True).values), _np(theirs.max(dim=0, keepdim=True).values))
    assert np.allclose(_np(gpugrad.max(ours, ours * 2)), _np(torch.max(theirs, theirs * 2)))
    assert ours.max().shape == () and float(ours.max().item()) == float(theirs.max().item())


def test_equal_unique_diag_bincount_and_flatten(device):
    ints = np.array([[3, 1, 3], [1, 2, 1]])
    ours, theirs = G(ints, device), torch.tensor(ints)
    assert gpugrad.equal(ours, ours) and not gpugrad.equal(ours, ours[:1]) and not ours.equal(ours + 1)
    for options in ({}, {"return_inverse": True, "return_counts": True}, {"dim": 1}, {"dim": 0, "return_inverse": True}):
        got, want = ours.unique(**options), torch.unique(theirs, **options)
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        assert [g.tolist() for g in got] == [w.tolist() for w in want], options
    for k in (0, 1, -1):
        a = RNG.standard_normal((2, 3))
        x, t = G(a, device, True), torch.tensor(a, requires_grad=True)
        (gpugrad.diag(x, k) * 3).sum().backward()
        (torch.diag(t, k) * 3).sum().backward()
        assert np.allclose(_np(gpugrad.diag(x, k)), _np(torch.diag(t, k))) and np.allclose(x.grad.numpy(), _np(t.grad))
        assert np.allclose(_np(G(a[0], device).diag(k)), _np(torch.tensor(a[0]).diag(k)))
    weights = np.array([0.5, 1.0, 2.0], np.float32)
    got = gpugrad.bincount(G([1, 1, 3], device), weights=G(weights, device), minlength=6)
    want = torch.bincount(torch.tensor([1, 1, 3]), weights=torch.tensor(weights), minlength=6)
    assert got.dtype == np.float32 and np.array_equal(got.numpy(), _np(want))
    assert gpugrad.bincount(G([0, 2, 2], device)).tolist() == [1, 0, 2]
    x = G(np.zeros((2, 3, 4)), device)
    for args in ((), (1,), (0, 1), (-2, -1)):
        assert x.flatten(*args).shape == tuple(torch.zeros(2, 3, 4).flatten(*args).shape)
    assert gpugrad.flatten(x, 1).shape == (2, 12)


def test_device_objects_and_autocast_spelled_as_pytorch(device):
    d = gpugrad.device("cuda", 1)
    assert d == "cuda:1" and d.type == "cuda" and d.index == 1 and gpugrad.device("cpu").index is None
    assert G([1.0], device).to(gpugrad.device(device)).device == (device if device == "cpu" else "cuda:0")
    with pytest.raises(ValueError, match="device: expected"):
        gpugrad.device("tpu")
    low = "bfloat16" if device == "cpu" else "float16"
    with gpugrad.autocast(device, dtype=low):
        assert (G(np.ones((2, 2), np.float32), device) @ G(np.ones((2, 2), np.float32), device)).dtype == low
    with gpugrad.autocast(device_type=device):
        assert (G(np.ones((2, 2), np.float32), device) @ G(np.ones((2, 2), np.float32), device)).dtype == low


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_lambda_and_multiplicative_schedules():
    for name, function in (("LambdaLR", lambda e: 0.9 ** e), ("MultiplicativeLR", lambda e: 0.95)):
        rates = []
        for lib in (torch, gpugrad):
            p = lib.nn.Parameter(lib.ones(1))
            opt = lib.optim.SGD([p], lr=0.1)
            schedule = getattr(lib.optim.lr_scheduler, name)(opt, function)
            lrs = []
            for _ in range(6):
                schedule.step()
                lrs.append(opt.param_groups[0]["lr"])
            rates.append(lrs)
        assert np.allclose(rates[0], rates[1]), name


@pytest.mark.parametrize("options", [dict(weight=True), dict(ignore_index=-100), dict(weight=True, ignore_index=-100),
                                     dict(label_smoothing=0.2), dict(weight=True, ignore_index=-1, label_smoothing=0.1),
                                     dict(probabilities=True, label_smoothing=0.3, weight=True)],
                         ids=["weight", "ignore", "weight-ignore", "smoothing", "all", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_nll_options(device, options, reduction):
    options = dict(options)
    x = RNG.standard_normal((6, 4))
    ignore = options.get("ignore_index")
    labels = np.array([0, 3, 1, 2, 1, 3]) if ignore is None else np.array([0, 3, ignore, 2, ignore, 3])
    class_weights = np.array([1.0, 2.0, 0.5, 3.0])
    probabilities = options.pop("probabilities", False)
    if probabilities:
        labels = RNG.random((6, 4))
        labels /= labels.sum(1, keepdims=True)
    use_weight = options.pop("weight", False)
    results = []
    for lib in (torch, gpugrad):
        logits = torch.tensor(x, requires_grad=True) if lib is torch else G(x, device, True)
        target = torch.tensor(labels) if lib is torch else G(labels, device)
        weight = None if not use_weight else torch.tensor(class_weights) if lib is torch else G(class_weights, device)
        loss = lib.nn.functional.cross_entropy(logits, target, weight=weight, reduction=reduction, **options)
        loss.sum().backward()
        results.append((_np(loss), _np(logits.grad)))
        if not probabilities and "label_smoothing" not in options:
            nll = lib.nn.functional.nll_loss(lib.log_softmax(logits, 1) if lib is torch else logits.log_softmax(1),
                                             target, weight=weight, reduction=reduction, **options)
            results.append((_np(nll), None))
    for ours, theirs in zip(results[len(results) // 2:], results[:len(results) // 2]):
        assert np.allclose(ours[0], theirs[0])
        assert ours[1] is None or np.allclose(ours[1], theirs[1])


@pytest.mark.parametrize("name, options", [("Adam", dict(lr=0.1, amsgrad=True)),
                                           ("AdamW", dict(lr=0.1, amsgrad=True, maximize=True)),
                                           ("SGD", dict(lr=0.1, momentum=0.9, maximize=True))])
def test_amsgrad_and_maximize(device, name, options):
    w0, X = RNG.standard_normal((3, 4)), RNG.standard_normal((5, 3))
    results = []
    for lib in (torch, gpugrad):
        w = torch.tensor(w0, requires_grad=True) if lib is torch else G(w0, device, True)
        x = torch.tensor(X) if lib is torch else G(X, device)
        opt = getattr(lib.optim, name)([w], **options)
        for _ in range(6):
            opt.zero_grad()
            ((x @ w).sin() ** 2).sum().backward()
            opt.step()
        results.append(_np(w))
    assert np.allclose(results[0], results[1], atol=1e-9)


def test_a_module_used_twice_keeps_both_key_sets_and_loads_strictly():
    for lib in (torch, gpugrad):
        shared = lib.nn.Linear(2, 2)
        model = lib.nn.Sequential(shared, lib.nn.ReLU(), shared)
        keys = list(model.state_dict())
        assert keys == ["0.weight", "0.bias", "2.weight", "2.bias"], (lib.__name__, keys)
        model.load_state_dict(model.state_dict())  # strict


def test_optimizers_without_the_options_keep_their_fused_kernel():
    """amsgrad and maximize move a group to the formula (and out of a CUDA graph); without them the kernel stays."""
    p = [nn.Parameter(gpugrad.ones(2))]
    assert optim.Adam(p).kernel_takes(optim.Adam(p).param_groups[0])
    assert not optim.Adam(p, amsgrad=True).kernel_takes(optim.Adam(p, amsgrad=True).param_groups[0])
    assert not optim.SGD(p, lr=0.1, maximize=True).kernel_takes(optim.SGD(p, lr=0.1, maximize=True).param_groups[0])
    logits = gpugrad.ones(2, 3, requires_grad=True)
    assert F.cross_entropy(logits, gpugrad.tensor([0, 2], dtype=gpugrad.long)).creator.name == "CrossEntropy"


def test_weights_travel_through_safetensors_both_ways(tmp_path):
    """gpugrad.save / load of .safetensors through the safetensors package (its numpy API), against
    safetensors.torch: a PyTorch state dict loads into the same gpugrad model, and back."""
    st_torch = pytest.importorskip("safetensors.torch")
    torch_model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    torch_model(torch.randn(5, 3))  # moves the running statistics
    st_torch.save_file(torch_model.state_dict(), str(tmp_path / "torch.safetensors"))
    ours = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    ours.load_state_dict(gpugrad.load(tmp_path / "torch.safetensors"))  # strict
    for key, value in torch_model.state_dict().items():
        assert np.array_equal(ours.state_dict()[key].numpy(), value.numpy()), key
    gpugrad.save(ours.state_dict(), tmp_path / "ours.safetensors")
    again = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    again.load_state_dict(st_torch.load_file(str(tmp_path / "ours.safetensors")))
    for key, value in again.state_dict().items():
        assert np.array_equal(value.numpy(), ours.state_dict()[key].numpy()), key
    with pytest.raises(TypeError, match="a .safetensors file holds a flat dict"):
        gpugrad.save({"epoch": 3}, tmp_path / "other.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(gpugrad.CheckpointError, match="bad.safetensors"):
        gpugrad.load(tmp_path / "bad.safetensors")
