"""The fused CUDA kernels: they compile, their activation codes are the Python table's, and on a GPU
they match the ops' xp formulas."""
import shutil
import subprocess

import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from gpugrad.backend import get_backend
from gpugrad.cuda.sources import kernel_dir
from gpugrad.ops.activation import ACTIVATIONS as TABLE
from gpugrad.ops.activation import apply_backward, apply_forward
from gpugrad.ops.matmul import bias_act_backward, bias_act_forward

KERNEL_FILES = sorted(kernel_dir().glob("*.cu"))


def test_kernel_sources_are_found():
    assert {p.name for p in KERNEL_FILES} >= {"activation.cu", "bias_act.cu", "softmax_xent.cu", "optim.cu"}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("path", KERNEL_FILES, ids=lambda p: p.name)
def test_kernel_compiles_with_nvcc(path, tmp_path):
    result = subprocess.run(["nvcc", "-std=c++17", "-arch=sm_90", "--ptx", "-o", str(tmp_path / "out.ptx"), str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_kernels_default_activation_codes_are_the_python_table():
    import re
    source = (kernel_dir() / "common.cuh").read_text()
    defaults = {m.group(1).lower(): int(m.group(2)) for m in re.finditer(r"#define GPUGRAD_ACT_(\w+) (\d+)", source)}
    assert defaults == {name: a.code for name, a in TABLE.items()}
    for name in TABLE:
        assert f"GPUGRAD_ACTIVATION({name}, ACT_{name.upper()})" in (kernel_dir() / "activation.cu").read_text()


@pytest.mark.gpu
def test_every_kernel_name_compiles_on_the_gpu(cuda):
    from gpugrad.cuda.kernels import KERNELS, load_kernel
    for module, names in KERNELS.items():
        for name in names:
            load_kernel(module, name)


# -- parity: the same formulas on both backends --------------------------------------------------
TOLERANCE = {np.float64: dict(rtol=1e-12, atol=1e-300), np.float32: dict(rtol=4 * 2.0 ** -23, atol=1e-37),
             np.float16: dict(rtol=1e-3, atol=1e-4)}

ACTIVATIONS = {"sigmoid": F.sigmoid, "relu": F.relu, "tanh": F.tanh,
               "leaky_relu": lambda x: F.leaky_relu(x, 0.1), "elu": lambda x: F.elu(x, 0.7)}


def _inputs(dtype, shape=(257, 80)):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    x.flat[:6] = [1000, -1000, 0, -0.0, 30, -30]
    return x


PARAMS = {"leaky_relu": {"negative_slope": 0.1}, "elu": {"alpha": 0.7}}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_kernels_match_cpu(cuda, name, dtype):
    """Forward from the same x, backward from the same (y, dy): the kernels against the xp formulas."""
    from gpugrad.cuda import kernels
    cpu, gpu = get_backend("cpu"), get_backend(cuda)
    param = next(iter(PARAMS.get(name, {}).values()), 0.0)
    x = _inputs(dtype)
    rng = np.random.default_rng(1)
    y = apply_forward(cpu, name, x, param)
    g = rng.standard_normal(x.shape).astype(dtype)
    # tanh, exp and expm1 differ by an ulp or two between libm and CUDA; everything else is the same arithmetic.
    tol = TOLERANCE[dtype] if name in ("relu", "leaky_relu") or dtype == np.float16 else \
        dict(rtol={np.float64: 1e-14, np.float32: 1e-6}[dtype], atol=0)
    np.testing.assert_allclose(gpu.to_numpy(kernels.activation_forward(name, gpu.asarray(x), param)), y, **tol)
    gx = apply_backward(cpu, name, y, g, param)
    np.testing.assert_allclose(gpu.to_numpy(kernels.activation_backward(name, gpu.asarray(y), gpu.asarray(g), param)),
                               gx, **TOLERANCE[dtype])


@pytest.mark.gpu
def test_relu_of_nan_is_nan_on_the_gpu(cuda):
    y = F.relu(gpugrad.tensor(np.array([np.nan, -1.0, 2.0], dtype=np.float32), device=cuda)).numpy()
    assert np.isnan(y[0]) and y[1] == 0 and y[2] == 2


@pytest.mark.gpu
def test_kernels_take_non_contiguous_and_empty_inputs(cuda):
    x = _inputs(np.float32, (64, 96))
    for fn in ACTIVATIONS.values():
        view_cpu = fn(gpugrad.tensor(x).T[::2]).numpy()
        view_gpu = fn(gpugrad.tensor(x, device=cuda).T[::2]).numpy()
        np.testing.assert_allclose(view_gpu, view_cpu, rtol=1e-6, atol=1e-7)
        assert fn(gpugrad.zeros(0, 4, device=cuda)).shape == (0, 4)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("shape", [(512, 1024, 10), (3, 5, 7), (1, 4, 2000)], ids=str)
def test_linear_bias_activation_matches_cpu(cuda, activation, dtype, shape):
    n, d_in, d_out = shape
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, d_in)).astype(dtype)
    w = (rng.standard_normal((d_out, d_in)) / np.sqrt(d_in)).astype(dtype)
    b = rng.standard_normal(d_out).astype(dtype)
    g = rng.standard_normal((n, d_out)).astype(dtype)
    results = {}
    for device in ("cpu", cuda):
        ts = [gpugrad.tensor(a, device=device, requires_grad=True) for a in (x, w, b)]
        y = F.linear(*ts, activation=activation)
        y.backward(gpugrad.tensor(g, device=device))
        results[device] = [y.numpy()] + [t.grad.numpy() for t in ts]
    # GEMMs and reductions: 1e-5 relative (float32) of the largest entry; float64 1e-12; half 1e-2.
    rtol = {np.float64: 1e-12, np.float32: 1e-5, np.float16: 1e-2}[dtype]
    # NOTE: in half precision a pre-activation within rounding of 0 can land on either side of
    # ReLU's kink on the two devices, which moves whole gradient rows; the epilogue's backward is
    # compared on identical inputs in test_bias_activation_backward_matches_cpu instead.
    checked = results[cuda] if (activation, dtype) != ("relu", np.float16) else results[cuda][:1]
    for got, want in zip(checked, results["cpu"]):
        scale = np.abs(want.astype(np.float64)).max() + 1e-30
        assert np.abs(got.astype(np.float64) - want).max() <= rtol * scale * (10 if dtype == np.float16 else 1)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "leaky_relu", "elu"])
@pytest.mark.parametrize("shape", [(512, 1024), (4096, 10), (3, 7), (1, 4), (2048, 1024), (1030, 1023)], ids=str)
def test_bias_activation_backward_matches_cpu(cuda, activation, dtype, shape):
    cpu, gpu = get_backend("cpu"), get_backend(cuda)
    rng = np.random.default_rng(4)
    z = rng.standard_normal(shape).astype(dtype)
    bias = rng.standard_normal(shape[-1]).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    param = 0.1 if activation in ("leaky_relu", "elu") else 0.0
    y = bias_act_forward(cpu, z.copy(), bias, activation, param)
    y_gpu = gpu.to_numpy(bias_act_forward(gpu, gpu.asarray(z), gpu.asarray(bias), activation, param))
    np.testing.assert_allclose(y_gpu, y, rtol={np.float64: 1e-14, np.float32: 1e-6, np.float16: 1e-3}[dtype])
    pre, bias_grad = bias_act_backward(cpu, y, g, activation, param, True)
    pre_gpu, bias_grad_gpu = (gpu.to_numpy(a) for a in bias_act_backward(gpu, gpu.asarray(y), gpu.asarray(g),
                                                                          activation, param, True))
    np.testing.assert_allclose(pre_gpu, pre, **TOLERANCE[dtype])
    scale = np.abs(pre.astype(np.float64)).sum(axis=0) + 1e-30  # a sum's error grows with the sum of |terms|
    error = np.abs(bias_grad_gpu.astype(np.float64) - bias_grad.astype(np.float64)) / scale
    assert error.max() <= {np.float64: 1e-14, np.float32: 1e-6, np.float16: 1e-3}[dtype]


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(512, 10), (7, 1000), (3, 1)], ids=str)
def test_softmax_cross_entropy_kernel_matches_cpu(cuda, dtype, shape):
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal(shape) * 3).astype(dtype)
    logits[0, 0] = 1e8 if dtype == np.float64 else 1e30
    labels = rng.integers(0, shape[1], shape[0])
    out = {}
    for device in ("cpu", cuda):
        t = gpugrad.tensor(logits, device=device, requires_grad=True)
        loss = F.cross_entropy(t, labels)
        loss.backward()
        out[device] = (loss.item(), t.grad.numpy())
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    assert out[cuda][0] == pytest.approx(out["cpu"][0], rel=rtol)
    np.testing.assert_allclose(out[cuda][1], out["cpu"][1], rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.gpu
def test_batched_matmul_on_the_gpu_matches_cpu(cuda):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 1, 33, 17)).astype(np.float32), rng.standard_normal((3, 17, 9)).astype(np.float32)
    results = {}
    for device in ("cpu", cuda):
        ta, tb = (gpugrad.tensor(v, device=device, requires_grad=True) for v in (a, b))
        y = ta @ tb
        y.sum().backward()
        results[device] = (y.numpy(), ta.grad.numpy(), tb.grad.numpy())
    for got, want in zip(results[cuda], results["cpu"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_direct_gemm_matches_numpy_for_every_layout(cuda, dtype):
    gpu = get_backend(cuda)
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((37, 19)).astype(dtype), rng.standard_normal((19, 23)).astype(dtype)
    layouts = {"C": lambda m: m, "F": lambda m: np.asfortranarray(m), "strided": None}
    for la, fa in layouts.items():
        for lb, fb in layouts.items():
            da = gpu.asarray(np.ascontiguousarray(a)) if fa is None else gpu.asarray(fa(a))
            db = gpu.asarray(np.ascontiguousarray(b)) if fb is None else gpu.asarray(fb(b))
            if fa is None:  # a non-contiguous view with the same values
                da = gpu.xp.repeat(da, 2, axis=1)[:, ::2]
            if fb is None:
                db = gpu.xp.repeat(db, 2, axis=1)[:, ::2]
            got = gpu.to_numpy(gpu.matmul(da, db)).astype(np.float64)
            want = a.astype(np.float64) @ b.astype(np.float64)
            rtol = {np.float64: 1e-12, np.float32: 1e-5, np.float16: 2e-3}[dtype]
            assert np.abs(got - want).max() <= rtol * np.abs(want).max(), (la, lb)
    assert gpu.matmul(gpu.xp.ones((3, 0), dtype), gpu.xp.ones((0, 2), dtype)).shape == (3, 2)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(256, 256), (3, 256, 256)], ids=["2-D", "batched"])
def test_matmul_precision_switch(cuda, shape):
    rng = np.random.default_rng(0)
    a = gpugrad.tensor(rng.standard_normal(shape).astype(np.float32), device=cuda)
    exact = (a.double() @ a.double()).numpy()
    try:
        gpugrad.set_matmul_precision("high")
        tf32 = (a @ a).numpy()
    finally:
        gpugrad.set_matmul_precision("highest")
    full = (a @ a).numpy()
    assert np.abs(full - exact).max() / np.abs(exact).max() < 1e-5
    assert 1e-5 < np.abs(tf32 - exact).max() / np.abs(exact).max() < 1e-2  # TF32 rounds the operands to 10 bits


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batched_and_broadcast_products_match_numpy(cuda, dtype):
    """Each a single cuBLAS call (strided batched where there is a batch): vectors, broadcast batches, transposed
    views and strided operands."""
    gpu = get_backend(cuda)
    rng = np.random.default_rng(9)
    cases = [((3,), (3, 5)), ((4, 3), (3,)), ((2, 4, 3), (3, 5)), ((4, 3), (2, 3, 5)), ((2, 4, 3), (2, 3, 5)),
             ((2, 1, 4, 3), (1, 3, 3, 5)), ((2, 3, 4, 3), (3,)), ((2, 0, 3), (3, 5)), ((2, 4, 0), (0, 5))]
    for shape_a, shape_b in cases:
        a, b = rng.standard_normal(shape_a).astype(dtype), rng.standard_normal(shape_b).astype(dtype)
        want = np.matmul(a.astype(np.float64), b.astype(np.float64))
        for da in (gpu.asarray(a), gpu.xp.ascontiguousarray(gpu.asarray(np.swapaxes(a, -1, -2))).swapaxes(-1, -2)
                   if a.ndim > 1 else gpu.asarray(a), gpu.xp.repeat(gpu.asarray(a), 2, axis=-1)[..., ::2]):
            got = gpu.to_numpy(gpu.matmul(da, gpu.asarray(b))).astype(np.float64)
            assert got.shape == want.shape, (shape_a, shape_b)
            rtol = {np.float64: 1e-12, np.float32: 1e-5}[dtype]
            assert np.abs(got - want).max(initial=0.0) <= rtol * max(np.abs(want).max(initial=0.0), 1.0), (shape_a, shape_b)


@pytest.mark.gpu
def test_device_rng_is_seeded(cuda):
    gpugrad.manual_seed(11)
    a = gpugrad.randn(5, device=cuda).numpy()
    gpugrad.manual_seed(11)
    b = gpugrad.randn(5, device=cuda).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
def test_memory_statistics_and_out_of_memory(cuda):
    import gpugrad.cuda as gcuda
    gcuda.empty_cache()
    gcuda.reset_peak_memory_stats()
    before = gcuda.memory_allocated()
    x = gpugrad.zeros(1024, 1024, device=cuda)  # 4 MiB
    assert gcuda.memory_allocated() - before >= 4 * 2 ** 20
    del x
    assert gcuda.max_memory_allocated() - before >= 4 * 2 ** 20
    from gpugrad.backend.cupy_backend import GPUOutOfMemoryError
    with pytest.raises(GPUOutOfMemoryError, match=r"out of memory allocating .*TiB.*released and retried") as info:
        gpugrad.zeros(2 ** 42, dtype=np.uint8, device=cuda)
    assert isinstance(info.value, MemoryError)


@pytest.mark.gpu
def test_transfers_are_explicit_and_differentiable(cuda):
    x = gpugrad.tensor([1.0, 2.0], requires_grad=True)
    y = (x.cuda() * 3).cpu()
    y.sum().backward()
    assert x.grad.numpy().tolist() == [3.0, 3.0]
    assert x.to("cuda:0").device == "cuda:0"


@pytest.mark.gpu
def test_out_of_range_label_gives_nan_loss_on_the_gpu(cuda):
    loss = F.cross_entropy(gpugrad.zeros(2, 3, device=cuda), np.array([0, 3]))
    assert np.isnan(loss.item())


@pytest.mark.gpu
def test_cross_entropy_on_the_gpu_is_deterministic(cuda):
    rng = np.random.default_rng(9)
    logits = gpugrad.tensor(rng.standard_normal((5000, 37)).astype(np.float32), device=cuda)
    labels = gpugrad.tensor(rng.integers(0, 37, 5000), device=cuda)
    losses = {F.cross_entropy(logits, labels).item() for _ in range(20)}
    assert len(losses) == 1
    reference = F.cross_entropy(logits.cpu(), labels.cpu()).item()
    assert losses.pop() == pytest.approx(reference, rel=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("shape", [(7, 33), (256, 1024), (3, 4, 50), (2, 5000)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_kernels_match_cpu(cuda, dtype, shape, affine):
    """The fused layer norm (kernels/layer_norm.cu) against the xp formula on the CPU, forward and backward."""
    from gpugrad.cuda import kernels
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal(shape[-1]) + 1).astype(dtype) if affine else None
    b = rng.standard_normal(shape[-1]).astype(dtype) if affine else None
    results = {}
    for device in ("cpu", cuda):
        xt = gpugrad.tensor(x, device=device, requires_grad=True)
        params = [gpugrad.tensor(a, device=device, requires_grad=True) for a in (w, b)] if affine else [None, None]
        y = F.layer_norm(xt, shape[-1], *params)
        (y * gpugrad.tensor(g, device=device)).sum().backward()
        if device != "cpu":
            assert y.creator.fused == shape[-1]  # the kernel ran
        results[device] = [y.numpy(), xt.grad.numpy()] + ([p.grad.numpy() for p in params] if affine else [])
    rtol = {np.float64: 1e-12, np.float32: 2e-5, np.float16: 2e-3}[dtype]
    for name, got, want in zip(("y", "dx", "dw", "db"), results[cuda], results["cpu"]):
        scale = np.abs(want.astype(np.float64)).max() + 1e-30
        assert np.abs(got.astype(np.float64) - want).max() <= rtol * scale * (10 if name in ("dw", "db") else 1), name
    if len(shape) == 2:  # a transposed (non-contiguous) input takes the formula
        assert kernels.layer_norm_forward(gpugrad.tensor(x, device=cuda).data.T, None, None, shape[0], 1e-5) is None


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_fused_dropout_draws_on_the_gpu_reproducibly(cuda, dtype):
    """kernels/dropout.cu: the kept fraction, the scale, backward's mask, and the sequence set by manual_seed."""
    x = gpugrad.tensor(np.ones((1000, 1000), dtype), device=cuda, requires_grad=True)
    gpugrad.manual_seed(3)
    first, second = F.dropout(x, 0.3), F.dropout(x, 0.3)
    assert first.creator.saved is not None and first.dtype == dtype
    values = first.numpy()
    kept = values != 0
    assert abs(kept.mean() - 0.7) < 0.005 and np.all(values[kept] == dtype(1 / 0.7))
    assert not np.array_equal(values, second.numpy())  # the offset moved
    first.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)  # dx = dy * the same scaled mask
    gpugrad.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.3).numpy(), values)
    rows = np.nonzero(kept.reshape(-1))[0]
    assert 0.45 < (rows % 2).mean() < 0.55  # neighbouring counters are not correlated
