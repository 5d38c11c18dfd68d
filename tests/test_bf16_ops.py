"""bfloat16 through the op set against PyTorch's bfloat16: each op alone (forward value and dtype, and
the gradient of a random upstream), within two bfloat16 roundings. Ops compute low precision in
float32 and round once, as PyTorch's CPU kernels do; both libraries then agree to a rounding."""
import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F

torch = pytest.importorskip("torch")
pytest.importorskip("ml_dtypes")

UNARY = {
    "neg": (lambda a: -a, lambda a: -a), "exp": (lambda a: a.exp(), torch.exp),
    "log": (lambda a: (a.abs() + 0.5).log(), lambda a: (a.abs() + 0.5).log()),
    "sqrt": (lambda a: (a.abs() + 0.5).sqrt(), lambda a: (a.abs() + 0.5).sqrt()),
    "sigmoid": (F.sigmoid, torch.sigmoid), "tanh": (F.tanh, torch.tanh), "relu": (F.relu, torch.relu),
    "gelu": (F.gelu, torch.nn.functional.gelu), "silu": (F.silu, torch.nn.functional.silu),
    "softplus": (F.softplus, torch.nn.functional.softplus), "sin": (lambda a: a.sin(), torch.sin),
    "square": (lambda a: a ** 2, lambda a: a ** 2), "scalar": (lambda a: 2.5 * a - 1, lambda a: 2.5 * a - 1),
    "sum": (lambda a: a.sum(dim=1), lambda a: a.sum(dim=1)), "mean": (lambda a: a.mean(dim=0), lambda a: a.mean(dim=0)),
    "max": (lambda a: a.max(dim=1).values, lambda a: a.amax(dim=1)),
    "softmax": (lambda a: F.softmax(a, dim=1), lambda a: torch.softmax(a, dim=1)),
    "log_softmax": (lambda a: F.log_softmax(a, dim=1), lambda a: torch.log_softmax(a, dim=1)),
    "layer_norm": (lambda a: F.layer_norm(a, 24), lambda a: torch.nn.functional.layer_norm(a, (24,))),
    "matmul": (lambda a: a @ a.T, lambda a: a @ a.T), "transpose": (lambda a: a.T, lambda a: a.T),
    "cumsum": (lambda a: a.cumsum(dim=1), lambda a: a.cumsum(dim=1)),
    "clamp": (lambda a: a.clamp(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7)),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b), "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / (b.abs() + 1), lambda a, b: a / (b.abs() + 1)),
    "maximum": (F.maximum, torch.maximum), "where": (lambda a, b: F.where(a > b, a, b), lambda a, b: torch.where(a > b, a, b)),
    "concatenate": (lambda a, b: F.concatenate([a, b], axis=0), lambda a, b: torch.cat([a, b], 0)),
}


def _pair(values):
    g = gpugrad.tensor(values.astype(gpugrad.bfloat16), requires_grad=True)
    t = torch.tensor(values).to(torch.bfloat16).requires_grad_(True)
    return g, t


def _close(what, ours, theirs):
    assert ours.dtype == gpugrad.bfloat16 or str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), \
        f"{what}: dtype {ours.dtype}, torch {theirs.dtype}"
    a = np.asarray(ours.numpy(), dtype=np.float32)
    b = theirs.detach().float().numpy()
    scale = np.abs(b).max() if b.size else 1.0
    np.testing.assert_allclose(a, b, rtol=1.6e-2, atol=1.6e-2 * max(scale, 1e-3), err_msg=what)


def _check(name, ours, theirs, count):
    rng = np.random.default_rng(sum(map(ord, name)))  # stable across processes (str hashes are not)
    inputs = [_pair(rng.standard_normal((8, 24)).astype(np.float32)) for _ in range(count)]
    out_g, out_t = ours(*[g for g, _ in inputs]), theirs(*[t for _, t in inputs])
    assert str(out_t.dtype) == "torch.bfloat16" and out_g.dtype == gpugrad.bfloat16, (name, out_g.dtype, out_t.dtype)
    _close(f"{name} forward", out_g, out_t)
    upstream = rng.standard_normal(tuple(out_t.shape)).astype(np.float32)
    (out_g * gpugrad.tensor(upstream.astype(gpugrad.bfloat16))).sum().backward()
    (out_t * torch.tensor(upstream).to(torch.bfloat16)).sum().backward()
    for i, (g, t) in enumerate(inputs):
        _close(f"{name} gradient {i}", g.grad, t.grad)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_op_in_bfloat16_matches_torch(name):
    _check(name, *UNARY[name], count=1)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_op_in_bfloat16_matches_torch(name):
    _check(name, *BINARY[name], count=2)
