"""Differential fuzzing of the edges against PyTorch (what found issue 26's defects, kept in the suite): every dtype
for the sort family, the reductions and clamp, on random shapes (0-d and empty included); random index shapes and
negative indices for gather and scatter_add; state-changing sequences (batches changed in place, reseeding); bad
constructor arguments for every loss and layer. Where both refuse, both must refuse; gpugrad's deliberate
differences are listed in DIFFERENCES (and docs/pytorch.md). Seeded: a failure names its case."""
import numpy as np
import pytest
import torch

import gpugrad
from gpugrad import nn
from gpugrad.utils import data

DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64]
SHAPES = [(), (5,), (3, 4), (2, 3, 4), (0,), (3, 0), (1, 4)]
# Kept on purpose (docs/pytorch.md): all()/any() return bool for every dtype (PyTorch: uint8 in, uint8 out).
DIFFERENCES = {("all", "uint8"), ("any", "uint8")}


def _values(rng, dtype, shape):
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(dtype)
    a = rng.integers(-4, 5, shape).astype(dtype)
    kind = np.dtype(dtype).kind
    if a.size and kind == "f":
        a.reshape(-1)[rng.integers(a.size)] = np.nan
    if a.size and kind in "iu":
        a.reshape(-1)[rng.integers(a.size)] = np.iinfo(dtype).min if kind == "i" else np.iinfo(dtype).max
    return a


def _run(f, x):
    try:
        return f(x), None
    except Exception as error:  # noqa: BLE001 -- the comparison is whether both refuse
        return None, error


def _compare(case, ours, theirs):
    (got, our_error), (want, their_error) = ours, theirs
    if their_error is not None or our_error is not None:
        assert (our_error is None) == (their_error is None) or case[:2] in DIFFERENCES, (case, our_error, their_error)
        return
    results = (got, want) if not isinstance(want, tuple) else zip(got, want)
    for g, w in ([results] if not isinstance(want, tuple) else results):
        g, w = g.numpy(), w.numpy()
        if case[:2] in DIFFERENCES:
            continue
        assert g.dtype == w.dtype and g.shape == w.shape, (case, g.dtype, w.dtype, g.shape, w.shape)
        assert np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=2e-3, atol=1e-6, equal_nan=True), (case, g, w)


def _ops(rng, ndim):
    dim = int(rng.integers(-ndim, ndim)) if ndim else 0
    keep = bool(rng.integers(2))
    lo, hi = sorted(int(v) for v in rng.integers(-5, 6, 2))
    flo = float(rng.uniform(-3, 1))
    return {
        "sum": (lambda x: x.sum(dim, keepdim=keep), lambda x: x.sum(dim, keepdim=keep)),
        "prod": (lambda x: x.prod(dim, keepdim=keep), lambda x: x.prod(dim, keepdim=keep)),
        "amax": (lambda x: x.amax(dim, keepdim=keep), lambda x: x.amax(dim, keepdim=keep)),
        "amin": (lambda x: x.amin(), lambda x: x.amin()),
        "argmax": (lambda x: x.argmax(dim, keepdim=keep), lambda x: x.argmax(dim, keepdim=keep)),
        "argmin": (lambda x: x.argmin(), lambda x: x.argmin()),
        "mean": (lambda x: x.mean(dim), lambda x: x.mean(dim)),
        "cumsum": (lambda x: x.cumsum(dim), lambda x: x.cumsum(dim)),
        "all": (lambda x: x.all(), lambda x: x.all()),
        "any": (lambda x: x.any(dim), lambda x: x.any(dim)),
        "clamp": (lambda x: x.clamp(lo, hi), lambda x: x.clamp(lo, hi)),
        "clamp_float": (lambda x: x.clamp(min=flo), lambda x: x.clamp(min=flo)),
        "sort": (lambda x: tuple(gpugrad.sort(x, dim, descending=keep)),
                 lambda x: tuple(torch.sort(x, dim=dim, descending=keep, stable=True))),
        "argsort": (lambda x: gpugrad.argsort(x, dim, descending=keep),
                    lambda x: torch.argsort(x, dim=dim, descending=keep, stable=True)),
        "topk": (lambda x: gpugrad.topk(x, min(2, x.shape[dim] if x.ndim else 1), dim, largest=keep)[0],
                 lambda x: torch.topk(x, min(2, x.shape[dim] if x.ndim else 1), dim, largest=keep)[0]),
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])
def test_reductions_clamp_and_the_sort_family_on_every_dtype_and_shape(dtype):
    rng = np.random.default_rng(list(map(np.dtype, DTYPES)).index(np.dtype(dtype)))
    for trial in range(12):
        shape = SHAPES[trial % len(SHAPES)]
        a = _values(rng, dtype, shape)
        for name, (ours, theirs) in _ops(rng, a.ndim).items():
            case = (name, np.dtype(dtype).name, shape, trial)
            _compare(case, _run(ours, gpugrad.tensor(a, dtype=a.dtype)), _run(theirs, torch.from_numpy(a.copy())))


def test_gather_and_scatter_add_on_random_index_shapes_and_negative_indices():
    rng = np.random.default_rng(11)
    for trial in range(200):
        shape = tuple(int(n) for n in rng.integers(1, 4, rng.integers(1, 4)))
        dim = int(rng.integers(-len(shape), len(shape)))
        index_shape = tuple(int(n) + int(rng.integers(-1, 2)) for n in shape)
        if any(n < 0 for n in index_shape):
            continue
        size = shape[dim]
        index = rng.integers(-1 if trial % 5 == 0 else 0, size + (1 if trial % 7 == 0 else 0), index_shape)
        x = rng.standard_normal(shape)
        case = (shape, dim, index.tolist())
        ours = _run(lambda v: gpugrad.tensor(v, dtype=np.float64).gather(dim, gpugrad.tensor(index, dtype=np.int64)), x)
        theirs = _run(lambda v: torch.tensor(v).gather(dim, torch.tensor(index)), x)
        _compare(("gather",) + case, ours, theirs)
        src = rng.standard_normal(tuple(max(n, 1) for n in index_shape))
        ours = _run(lambda v: gpugrad.tensor(v, dtype=np.float64).scatter_add(
            dim, gpugrad.tensor(index, dtype=np.int64), gpugrad.tensor(src, dtype=np.float64)), x)
        theirs = _run(lambda v: torch.tensor(v).scatter_add(dim, torch.tensor(index), torch.tensor(src)), x)
        _compare(("scatter_add",) + case, ours, theirs)


def test_batches_changed_in_place_and_reseeding_leave_the_data_and_the_order_as_pytorch_would():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((23, 3)).astype(np.float32)
    y = np.arange(23)
    kept = X.copy()
    orders = []
    for repeat in range(2):
        gpugrad.manual_seed(42)
        seen = []
        for epoch in range(3):
            for shuffle in (True, False):
                for xb, yb in data.DataLoader(X, y, batch_size=int(rng.integers(1, 9)), shuffle=shuffle):
                    xb -= xb.mean()  # a user's in-place normalization of the batch
                    xb *= 0.0
                    if shuffle:
                        seen.extend(yb.tolist())
        orders.append(seen)
        assert np.array_equal(X, kept), "a batch changed in place changed the data set"
    assert orders[0] == orders[1]  # reseeding repeats every shuffle


BAD_ARGUMENTS = [
    (lambda: nn.Linear(-1, 3), "in_features"), (lambda: nn.Linear(3, 2.5), "out_features"),
    (lambda: nn.Dropout(1.5), "p"), (lambda: nn.LayerNorm(0), "normalized_shape"), (lambda: nn.LayerNorm(3, eps=-1), "eps"),
    (lambda: nn.BatchNorm1d(0), "num_features"), (lambda: nn.BatchNorm1d(3, eps=-1.0), "eps"),
    (lambda: nn.BatchNorm1d(3, momentum=2.0), "momentum"), (lambda: nn.Embedding(-1, 3), "num_embeddings"),
    (lambda: nn.Embedding(3, 2, padding_idx=5), "padding_idx"), (lambda: nn.LeakyReLU("x"), "negative_slope"),
    (lambda: nn.ELU(alpha="x"), "alpha"), (lambda: nn.GELU("fast"), "approximate"),
    (lambda: nn.Unflatten(1, "x"), "unflattened_size"), (lambda: nn.MLP([3]), "sizes"),
    (lambda: nn.Sequential(3), "argument 0"), (lambda: nn.HuberLoss(delta=-1.0), "delta"),
    (lambda: nn.SmoothL1Loss(beta=-1.0), "beta"),
] + [(lambda loss=loss: getattr(nn, loss)(reduction="avg"), "reduction")
     for loss in ("MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "HuberLoss",
                  "SmoothL1Loss")]


@pytest.mark.parametrize("make, argument", BAD_ARGUMENTS, ids=[f"{i}-{a}" for i, (_, a) in enumerate(BAD_ARGUMENTS)])
def test_a_bad_constructor_argument_is_a_one_line_error_naming_it(make, argument):
    with pytest.raises((TypeError, ValueError)) as caught:
        make()
    message = str(caught.value)
    assert argument in message and "\n" not in message, message
