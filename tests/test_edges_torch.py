"""The edges found by the second reliability wave (issue 26), each against PyTorch on both devices: what was
silently wrong, what crashed where PyTorch works, and what was accepted where PyTorch refuses."""
import numpy as np
import pytest
import torch

import gpugrad
import gpugrad.functional as F
from gpugrad import nn
from gpugrad.utils import data

DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64]


def G(values, device, dtype=None, requires_grad=False):
    array = np.asarray(values) if dtype is None else np.asarray(values, dtype=dtype)
    return gpugrad.tensor(array, dtype=array.dtype, device=device, requires_grad=requires_grad)


def _np(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.numpy()


def _edge_values(dtype, shape=(4, 7), seed=0):
    """Values with ties, and each dtype's hard cases: NaN (floats), the minimum (signed), 255 (unsigned)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, shape) if dtype == np.bool_ else rng.integers(-3, 4, shape)
    a = a.astype(dtype)
    kind = np.dtype(dtype).kind
    if kind == "f":
        a[0, 2] = a[1, 1] = np.nan
        a[2, 0] = -np.inf
    elif kind == "i":
        a[2, 3] = np.iinfo(dtype).min
    elif kind == "u":
        a[2, 3] = np.iinfo(dtype).max
    return a


# -- silently wrong ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_argsort_topk_on_every_dtype_as_torch(device, dtype, descending):
    """One descending rule (never -x): unsigned types, a signed type's minimum and bool sort right, NaN first."""
    a = _edge_values(dtype)
    values, indices = gpugrad.sort(G(a, device), 1, descending=descending)
    t_values, t_indices = torch.sort(torch.from_numpy(a), dim=1, descending=descending, stable=True)
    assert np.array_equal(values.numpy(), t_values.numpy(), equal_nan=True) and values.dtype == a.dtype
    assert np.array_equal(indices.numpy(), t_indices.numpy())
    assert np.array_equal(gpugrad.argsort(G(a, device), 1, descending=descending).numpy(), t_indices.numpy())
    if dtype != np.bool_:  # torch.topk has no bool
        k_values, k_indices = gpugrad.topk(G(a, device), 3, dim=1, largest=descending)
        t_k = torch.topk(torch.from_numpy(a), 3, dim=1, largest=descending)
        assert np.array_equal(k_values.numpy(), t_k.values.numpy(), equal_nan=True)


def test_sort_and_topk_of_a_0d_tensor_as_torch(device):
    x = G(3.0, device, np.float32, requires_grad=True)
    values, indices = gpugrad.sort(x)
    assert values.shape == () and indices.shape == () and indices.item() == 0 and values.item() == 3.0
    values.backward()
    assert x.grad.item() == 1.0
    k_values, k_indices = gpugrad.topk(G(3.0, device, np.float32), 1)
    assert k_values.shape == () == k_indices.shape
    assert gpugrad.argsort(G(3.0, device, np.float32)).shape == ()


def test_gather_and_scatter_add_take_pytorchs_index_shapes_and_refuse_negative_indices(device):
    x = np.arange(12.0).reshape(3, 4)
    for dim, index in ((1, [[0, 1]]), (1, [[0, 1, 2, 3, 0]]), (0, [[2, 0, 1, 1]]), (0, [[1], [2]])):
        ours = G(x, device, requires_grad=True)
        theirs = torch.tensor(x, requires_grad=True)
        got = ours.gather(dim, G(index, device, np.int64))
        want = theirs.gather(dim, torch.tensor(index))
        assert got.shape == tuple(want.shape) and np.array_equal(got.numpy(), _np(want)), (dim, index)
        (got * 2).sum().backward()
        (want * 2).sum().backward()
        assert np.array_equal(ours.grad.numpy(), _np(theirs.grad))
    src = np.ones((2, 3))
    got = G(np.zeros((3, 4)), device).scatter_add(1, G([[0, 1]], device, np.int64), G(src, device))
    want = torch.zeros(3, 4, dtype=torch.float64).scatter_add(1, torch.tensor([[0, 1]]), torch.tensor(src))
    assert np.array_equal(got.numpy(), _np(want))
    with pytest.raises(IndexError, match=r"gather: index -1 is out of bounds for dimension 1 with size 4"):
        G(x, device).gather(1, G([[0, -1]], device, np.int64))
    with pytest.raises(IndexError, match=r"scatter_add: index -2 is out of bounds"):
        G(np.zeros((3, 4)), device).scatter_add(1, G([[0, -2]], device, np.int64), G(src, device))
    with pytest.raises(ValueError, match=r"gather: index of shape \(1, 5\) is larger than the input of shape \(3, 4\) "
                                         r"in dimension 1 \(dim=0\)"):
        G(x, device).gather(0, G([[0, 1, 2, 0, 1]], device, np.int64))


def test_std_of_a_constant_feature_has_a_zero_gradient_as_torch(device):
    """Before, std's backward was NaN where the spread was 0: one constant feature poisoned every gradient."""
    a = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]])
    ours, theirs = G(a, device, requires_grad=True), torch.tensor(a, requires_grad=True)
    ours.std(1).sum().backward()
    theirs.std(1).sum().backward()
    assert np.allclose(ours.grad.numpy(), _np(theirs.grad)) and not np.isnan(ours.grad.numpy()).any()


def test_clamp_sign_linspace_and_floor_division_follow_torchs_dtypes_and_values(device):
    ints = np.array([1, 2, 3])
    got, want = G(ints, device).clamp(1.5, 2.5), torch.tensor(ints).clamp(1.5, 2.5)
    assert got.dtype == np.float32 and np.array_equal(got.numpy(), _np(want))  # promoted, bounds not truncated
    signs = np.array([np.nan, -2.0, 0.0, 3.0], np.float32)
    assert np.array_equal(gpugrad.sign(G(signs, device)).numpy(), torch.sign(torch.from_numpy(signs)).numpy())
    lin = gpugrad.linspace(-2.5, 2.5, 5, dtype=gpugrad.int32, device=device)
    assert np.array_equal(lin.numpy(), torch.linspace(-2.5, 2.5, 5, dtype=torch.int32).numpy())
    with pytest.raises(TypeError, match="linspace: dtype bool"):
        gpugrad.linspace(0, 1, 3, dtype=gpugrad.bool)
    pairs = [(np.float32, np.int32), (np.int32, None)]
    for a, b in pairs:
        x = G(np.array([7, -7]), device, a)
        y = G(np.array([2, 2]), device, b) if b else 2.5
        t = torch.from_numpy(np.array([7, -7], a)) // (torch.from_numpy(np.array([2, 2], b)) if b else 2.5)
        assert (x // y).dtype == t.numpy().dtype and np.array_equal((x // y).numpy(), t.numpy())


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_a_parameter_group_added_later_is_scheduled_as_torch():
    for name, options in (("StepLR", dict(step_size=2, gamma=0.5)), ("ExponentialLR", dict(gamma=0.9)),
                          ("CosineAnnealingLR", dict(T_max=10, eta_min=0.01)),
                          ("MultiStepLR", dict(milestones=[2, 5], gamma=0.5)),
                          ("LinearLR", dict(start_factor=0.5, total_iters=4))):
        rates = []
        for lib in (torch, gpugrad):
            p, q = (lib.nn.Parameter(lib.ones(1)) for _ in range(2))
            opt = lib.optim.SGD([p], lr=0.1)
            schedule = getattr(lib.optim.lr_scheduler, name)(opt, **options)
            for _ in range(3):
                schedule.step()
            opt.add_param_group({"params": [q], "lr": 0.2})
            lrs = []
            for _ in range(6):
                schedule.step()
                lrs.append(opt.param_groups[1]["lr"])
            rates.append(lrs)
        assert np.allclose(rates[1], rates[0]), (name, rates)


def test_dataloader_batches_are_copies_and_shuffles_follow_manual_seed(device):
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    for xb, _ in data.DataLoader(X, y, batch_size=4, shuffle=False, device=device):
        xb -= 100.0  # PyTorch hands out copies: the data set stays as it was
    assert np.array_equal(X, np.arange(20, dtype=np.float32).reshape(10, 2))
    dataset = data.TensorDataset(G(X, device), G(y, device))
    for xb, _ in data.DataLoader(dataset, batch_size=4, shuffle=False):
        assert xb.device == dataset.tensors[0].device  # where the data is, as PyTorch's (a CUDA dataset: CUDA batches)
        xb += 1.0
    assert np.array_equal(dataset.tensors[0].numpy(), X)

    def epoch_orders():
        gpugrad.manual_seed(0)
        loader = data.DataLoader(X, y, batch_size=10, device=device)
        split = data.random_split(data.TensorDataset(G(X, "cpu"), G(y, "cpu")), [7, 3])
        return [next(iter(loader))[1].tolist() for _ in range(2)], split[1].indices
    first, second = epoch_orders(), epoch_orders()
    assert first == second and first[0][0] != first[0][1]  # repeats under manual_seed; epochs differ
    generator = gpugrad.Generator().manual_seed(3)
    a = data.random_split(range(10), [5, 5], generator=generator)[0].indices
    b = data.random_split(range(10), [5, 5], generator=gpugrad.Generator().manual_seed(3))[0].indices
    assert a == b


# -- crashes where PyTorch works -----------------------------------------------------------------------------------
def test_clamp_with_tensor_bounds_gives_the_bounds_their_gradients_as_torch(device):
    rng = np.random.default_rng(0)
    a, low, high = rng.standard_normal((3, 4)), rng.standard_normal((1, 4)) - 0.5, rng.standard_normal((3, 1)) + 0.5
    high[0, 0] = -3.0  # a high below the low: PyTorch's rule for which bound gets the gradient
    weights = np.arange(12.0).reshape(3, 4)
    results = []
    for lib in (torch, gpugrad):
        tensors = [torch.tensor(v, requires_grad=True) for v in (a, low, high)] if lib is torch else \
            [G(v, device, requires_grad=True) for v in (a, low, high)]
        out = tensors[0].clamp(tensors[1], tensors[2])
        (out * (torch.tensor(weights) if lib is torch else G(weights, device))).sum().backward()
        results.append([_np(out)] + [_np(t.grad) for t in tensors])
    for ours, theirs in zip(results[1], results[0]):
        assert np.allclose(ours, theirs)


def test_batchnorm_cumulative_average_einsum_broadcast_narrow_and_reflected_bitwise_as_torch(device):
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    ours, theirs = nn.BatchNorm1d(3, momentum=None).to(device), torch.nn.BatchNorm1d(3, momentum=None)
    for k in (1.0, 2.0, 3.0):
        ours(G(x * k, device))
        theirs(torch.from_numpy(x * k))
    assert np.allclose(ours.running_mean.numpy(), _np(theirs.running_mean), atol=1e-6)
    assert np.allclose(ours.running_var.numpy(), _np(theirs.running_var), atol=1e-5)
    a, b = np.random.default_rng(1).standard_normal((3, 4)), np.random.default_rng(2).standard_normal((3, 1))
    for equation in ("ij,ij->ij", "ij,ij->i", "ij,ij->j"):
        A, B = G(a, device, requires_grad=True), G(b, device, requires_grad=True)
        At, Bt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        (gpugrad.einsum(equation, A, B) ** 2).sum().backward()
        (torch.einsum(equation, At, Bt) ** 2).sum().backward()
        assert np.allclose(A.grad.numpy(), _np(At.grad)) and np.allclose(B.grad.numpy(), _np(Bt.grad)), equation
    assert G(np.ones((3, 4)), device).narrow(1, -2, 2).shape == (3, 2)
    ints = np.array([1, 2, 12])
    for op in (lambda v, t: v & t, lambda v, t: v | t, lambda v, t: v ^ t):
        assert np.array_equal(op(0x1337, G(ints, device)).numpy(), op(0x1337, torch.tensor(ints)).numpy())
    assert gpugrad.erf(G(0.5, device, np.float32)).shape == ()


# -- accepted where PyTorch refuses --------------------------------------------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda d: F.huber_loss(G([1.0], d), G([0.0], d), delta=-1.0), ValueError, "huber_loss: delta must be > 0"),
    (lambda d: F.smooth_l1_loss(G([1.0], d), G([0.0], d), beta=-1.0), ValueError, "smooth_l1_loss: beta must be >= 0"),
    (lambda d: G(np.ones((3, 4)), d).flip((0, 0)), ValueError, "flip: a dim appears more than once"),
    (lambda d: G(np.ones((3, 4)), d).expand(-1, 3, 4), ValueError, "expand: sizes"),
    (lambda d: nn.Flatten(2, 1)(G(np.ones((2, 3, 4, 5)), d)), ValueError, "Flatten: start_dim 2 comes after end_dim 1"),
    (lambda d: G(np.ones((3, 4)), d).narrow(1, -5, 2), IndexError, "narrow"),
], ids=["huber", "smooth_l1", "flip", "expand", "flatten", "narrow"])
def test_what_pytorch_refuses_is_refused_with_one_line(device, call, error, message):
    with pytest.raises(error, match=message):
        call(device)


def test_a_state_dict_is_saved_under_its_own_keys_and_old_files_still_load(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    gpugrad.save(model.state_dict(), tmp_path / "model.npz")
    with np.load(tmp_path / "model.npz") as archive:
        assert sorted(archive.files) == sorted(model.state_dict())
    back = gpugrad.load(tmp_path / "model.npz")
    assert list(back) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert back[key].dtype == value.dtype and np.array_equal(back[key].numpy(), value.numpy())
    nested = {"model": model.state_dict(), "epoch": 3}  # anything else keeps the index
    gpugrad.save(nested, tmp_path / "nested.npz")
    assert gpugrad.load(tmp_path / "nested.npz")["epoch"] == 3


def test_the_deliberate_differences_from_pytorch_hold():
    """docs/pytorch.md lists them; each one here, so that none changes unnoticed."""
    assert gpugrad.tensor([0, 1]).dtype == np.float32 and torch.tensor([0, 1]).dtype == torch.int64
    x = np.array([[1.0, 5.0], [7.0, 2.0]], np.float32)
    assert np.array_equal(gpugrad.tensor(x).max(axis=1).numpy(), [5.0, 7.0])  # numpy's axis=: the values alone
    loader = data.DataLoader(np.arange(64.0).reshape(32, 2), np.arange(32), batch_size=32)
    assert next(iter(loader))[1].tolist() != list(range(32))  # shuffled by default
    three = np.zeros((2, 3, 4))
    assert gpugrad.tensor(three).transpose(0, 2).shape == (4, 3, 2)
    assert gpugrad.tensor(three).transpose(2, 0, 1).shape == (4, 2, 3)  # numpy's permutation for other counts
    u8 = np.array([0, 3], np.uint8)
    assert gpugrad.tensor(u8, dtype=np.uint8).all().dtype == np.bool_ and torch.from_numpy(u8).all().dtype == torch.uint8
    labels = gpugrad.tensor([0, -100], dtype=gpugrad.long)  # PyTorch's default ignore_index is not assumed: refused
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.cross_entropy(gpugrad.ones(2, 3), labels)
    assert F.cross_entropy(gpugrad.ones(2, 3), labels, ignore_index=-100).item() == pytest.approx(np.log(3))
    assert F.cross_entropy(gpugrad.ones(2, 3), np.array([0, 2])).item() == pytest.approx(np.log(3))  # an array taken
    with pytest.raises(TypeError):
        torch.nn.functional.cross_entropy(torch.ones(2, 3), np.array([0, 2]))
    for make in (lambda lib: lib.nn.LayerNorm(3, eps=-1.0), lambda lib: lib.nn.HuberLoss(delta=-1.0),
                 lambda lib: lib.nn.BatchNorm1d(3, momentum=2.0)):
        make(torch)  # PyTorch makes it
        with pytest.raises(ValueError):
            make(gpugrad)



def test_bfloat16_sorts_and_uniques_through_exact_float32(device):
    """CuPy's thrust sort has no bfloat16 (the stand-in refuses it as CuPy does): the sort family and unique sort
    float16 / bfloat16 as their exact float32 values and give back the tensor's own dtype."""
    bfloat16 = gpugrad.bfloat16
    a = np.array([[3.0, 1.0, 2.0, 1.0]], np.float32)
    x = G(a.astype(bfloat16), device, requires_grad=True)
    if device != "cpu":
        with pytest.raises(NotImplementedError):
            x.backend.xp.argsort(x.data)
    values, indices = gpugrad.sort(x, 1, descending=True)
    values.sum().backward()
    assert values.dtype == bfloat16 and values.tolist() == [[3.0, 2.0, 1.0, 1.0]] and indices.tolist() == [[0, 2, 1, 3]]
    assert x.grad.tolist() == [[1.0, 1.0, 1.0, 1.0]]
    unique = x.unique()
    assert unique.dtype == bfloat16 and unique.tolist() == [1.0, 2.0, 3.0]
