"""Mixed precision: autocast's dtypes per op, its state (nesting, enabled=False, exceptions, threads,
the per-region cast cache), bfloat16 and float16 numerics against float32, GradScaler against
PyTorch's, and both under gpugrad.compile."""
import threading

import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
import gpugrad.nn as nn
import gpugrad.optim as optim

pytest.importorskip("ml_dtypes")
LOW = ["bfloat16", "float16"]


def _inputs(device, dtype=np.float32):
    rng = np.random.default_rng(0)
    x = gpugrad.tensor(rng.standard_normal((8, 12)).astype(dtype), device=device, requires_grad=True)
    w = gpugrad.tensor((rng.standard_normal((6, 12)) * 0.3).astype(dtype), device=device, requires_grad=True)
    b = gpugrad.tensor(np.zeros(6, dtype), device=device, requires_grad=True)
    y = gpugrad.tensor(rng.integers(0, 6, 8), device=device)
    return x, w, b, y


@pytest.mark.parametrize("low", LOW)
def test_each_op_runs_in_the_dtype_of_the_table(device, low):
    x, w, b, y = _inputs(device)
    expected_low = np.dtype(getattr(gpugrad, low))
    with gpugrad.autocast(low):
        h = F.linear(x, w, b, activation="relu")
        results = {
            "linear": (h, expected_low), "matmul": (x @ w.T, expected_low),
            "einsum": (F.einsum("ij,kj->ik", x, w), expected_low),
            "softmax": (F.softmax(h, dim=1), np.float32), "log_softmax": (F.log_softmax(h, dim=1), np.float32),
            "cross_entropy": (F.cross_entropy(h, y), np.float32), "mse": (F.mse_loss(h, h.detach()), np.float32),
            "layer_norm": (F.layer_norm(h, 6), np.float32), "sum": (h.sum(), np.float32),
            "exp": (h.exp(), np.float32), "log": ((h.abs() + 1).log(), np.float32), "pow": (h ** 2, np.float32),
            "relu (as given)": (F.relu(h), expected_low), "mul (as given)": (h * 2, expected_low),
            "mixed add (promotes)": (h + x[:, :6], np.float32), "float32 mul (as given)": (x * 2, np.float32),
        }
        loss = F.cross_entropy(h, y) + (h.float() ** 2).mean()
    for name, (tensor, dtype) in results.items():
        assert tensor.dtype == dtype, name
    loss.backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32  # master weights and their gradients


def test_float64_is_never_cast(device):
    x, w, _, _ = _inputs(device, np.float64)
    with gpugrad.autocast("bfloat16"):
        assert (x @ w.T).dtype == np.float64


def test_nesting_enabled_false_decorator_and_restore_on_exceptions():
    x, w, _, _ = _inputs("cpu")
    with gpugrad.autocast("float16"):
        with gpugrad.autocast(enabled=False):
            assert (x @ w.T).dtype == np.float32
        with gpugrad.autocast("bfloat16"):
            assert (x @ w.T).dtype == gpugrad.bfloat16
        assert (x @ w.T).dtype == np.float16
    assert (x @ w.T).dtype == np.float32
    with pytest.raises(ZeroDivisionError):
        with gpugrad.autocast("bfloat16"):
            1 / 0
    assert not gpugrad.amp.is_autocast_enabled() and gpugrad.autograd.features.autocast is None

    @gpugrad.autocast("bfloat16")
    def forward(a, b):
        return a @ b.T
    assert forward(x, w).dtype == gpugrad.bfloat16 and (x @ w.T).dtype == np.float32
    with pytest.raises(ValueError, match="bfloat16' or 'float16"):
        gpugrad.autocast("int8")


def test_autocast_is_per_thread():
    x, w, _, _ = _inputs("cpu")
    inside, outside = threading.Event(), threading.Event()
    seen = {}

    def other():
        inside.wait()
        seen["dtype"] = (x @ w.T).dtype
        outside.set()
    thread = threading.Thread(target=other)
    thread.start()
    with gpugrad.autocast("bfloat16"):
        inside.set()
        outside.wait()
    thread.join()
    assert seen["dtype"] == np.float32


def test_a_parameter_is_cast_once_per_region_until_it_changes():
    x, w, _, _ = _inputs("cpu")
    with gpugrad.autocast("bfloat16"):
        first, second = F.linear(x, w), F.linear(x * 2, w)
        assert first.creator.inputs[1] is second.creator.inputs[1]  # one cast of w, used twice
        with gpugrad.no_grad():
            w.mul_(2.0)
        third = F.linear(x, w)
        assert third.creator.inputs[1] is not first.creator.inputs[1]  # w changed: cast anew
        np.testing.assert_allclose(third.float().numpy(), 2 * first.float().numpy(), rtol=1e-2, atol=1e-2)
    with gpugrad.autocast("bfloat16"):
        assert F.linear(x, w).creator.inputs[1] is not third.creator.inputs[1]  # a new region casts anew
    (first.float().sum() + second.float().sum()).backward()
    assert w.grad.dtype == np.float32


def _mlp_run(device, precision, steps=100, scaler=None, compiled=False):
    gpugrad.manual_seed(0)
    data = gpugrad.utils.data.digits()
    model = nn.MLP([64, 256, 256, 10], activation="relu").to(device)  # gpugrad train's defaults
    opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    scaler = scaler or gpugrad.GradScaler(enabled=False)

    def step(xb, yb):
        with gpugrad.autocast(precision or "bfloat16", enabled=precision is not None):
            loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss
    run = gpugrad.compile(step) if compiled else step
    loader = gpugrad.utils.data.DataLoader(data.X_train, data.y_train, batch_size=64, shuffle=True, seed=0,
                                     device=device, drop_last=True)
    losses = []
    while len(losses) < steps:
        for xb, yb in loader:
            losses.append(run(xb, yb).item())
            if len(losses) == steps:
                break
    return np.array(losses), model


@pytest.mark.parametrize("precision", LOW)
def test_an_mlps_loss_and_gradients_stay_within_low_precision_tolerance_of_float32(device, precision):
    """One batch through gpugrad train's MLP: the loss and every parameter's gradient (float32) near float32's,
    by norm. bfloat16: within 16 unit roundoffs (2^-8; each of the three layers rounds the operands of two or
    three GEMMs; measured 7-10). float16 (with its loss scaler): within 2% (measured 1.0%, 20 roundoffs of
    2^-11: ReLU's mask flips where a pre-activation is within a rounding of zero dominate)."""
    data = gpugrad.utils.data.digits()
    x = gpugrad.tensor(data.X_train[:128], device=device)
    y = gpugrad.tensor(data.y_train[:128], device=device)
    results = []
    for low in (None, precision):
        gpugrad.manual_seed(0)
        model = nn.MLP([64, 256, 256, 10], activation="relu").to(device)
        with gpugrad.autocast(low or "bfloat16", enabled=low is not None):
            loss = F.cross_entropy(model(x), y)
        scaler = gpugrad.GradScaler(enabled=low == "float16")
        scaler.scale(loss).backward()
        scaler.unscale_(optim.SGD(model.parameters(), lr=1.0))
        results.append((loss.item(), [p.grad.numpy() for p in model.parameters()]))
    (loss32, grads32), (loss_low, grads_low) = results
    tolerance = 16 * 2.0 ** -8 if precision == "bfloat16" else 0.02
    assert abs(loss_low - loss32) <= tolerance * abs(loss32)
    for g32, glow in zip(grads32, grads_low):
        assert glow.dtype == np.float32
        error = np.linalg.norm(glow - g32) / np.linalg.norm(g32)
        assert error <= tolerance, (precision, g32.shape, error)


@pytest.mark.parametrize("precision", LOW)
def test_the_first_100_losses_stay_within_2_percent_of_float32(device, precision):
    reference, _ = _mlp_run(device, None)
    scaler = gpugrad.GradScaler() if precision == "float16" else None
    losses, model = _mlp_run(device, precision, scaler=scaler)
    assert np.all(np.abs(losses - reference) <= 0.02 * np.abs(reference) + 1e-3), np.abs(losses - reference).max()
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_the_scaler_keeps_float16_gradients_that_underflow_without_it(device):
    x, w, _, _ = _inputs(device)
    grads = {}
    for name, scaler in (("float32", None), ("unscaled", gpugrad.GradScaler(enabled=False)), ("scaled", gpugrad.GradScaler())):
        w.grad = None
        with gpugrad.autocast("float16", enabled=name != "float32"):
            loss = (x @ w.T).float().sum() * 1e-9  # float16's smallest subnormal is 6e-8
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler is not None:
            scaler.unscale_(optim.SGD([w], lr=0.1))
        grads[name] = w.grad.numpy()
    assert np.count_nonzero(grads["unscaled"]) == 0
    np.testing.assert_allclose(grads["scaled"], grads["float32"], rtol=2e-2)


PATTERN = [1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]  # 1: a step with an inf gradient (the first one too)
OPTIMIZERS = {"sgd": (dict(lr=0.1), "SGD"), "sgd-momentum-dampening": (dict(lr=0.1, momentum=0.9, dampening=0.3), "SGD"),
              "adamw": (dict(lr=0.1, weight_decay=0.1), "AdamW")}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_scalers_grow_back_off_and_skip_sequence_equals_pytorchs(device, name):
    torch = pytest.importorskip("torch")
    ours = gpugrad.GradScaler(init_scale=8.0, growth_interval=3)
    theirs = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=3)
    values = np.linspace(0.5, 1.5, 20, dtype=np.float32)
    p, q = gpugrad.tensor(values, requires_grad=True, device=device), torch.nn.Parameter(torch.tensor(values))
    hyper, kind = OPTIMIZERS[name]
    opt, topt = getattr(optim, kind)([p], **hyper), getattr(torch.optim, kind)([q], **hyper)
    for i, bad in enumerate(PATTERN):
        ours.scale(gpugrad.tensor(np.float32(1.0), device=device))
        theirs.scale(torch.ones(()))
        grad = np.cos(values * (i + 1)).astype(np.float32)  # the skip is decided on the device, from the flag
        grad[3] = np.inf if bad else grad[3]
        p.grad = gpugrad.tensor(grad * np.float32(ours.get_scale()), device=device)
        q.grad = torch.tensor(grad) * theirs.get_scale()
        ours.step(opt)
        theirs.step(topt)
        ours.update()
        theirs.update()
        assert ours.get_scale() == theirs.get_scale()
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-7, err_msg=f"step {i}")
        if not bad:  # unscaled by the optimizer as it read them, as PyTorch's unscale_ leaves them
            np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy(), err_msg=f"gradient at step {i}")
        if kind == "AdamW" and not (i == 0 and bad):  # the skipped steps are not counted (bias corrections)
            assert float(opt.state[p]["step"]) == float(topt.state[q]["step"])
    assert ours.state_dict() == theirs.state_dict()
    assert {k: set(v) for k, v in opt.state_dict()["state"].items()} == \
        {k: set(v) for k, v in topt.state_dict()["state"].items()}


def test_unscale_then_clip_then_step_matches_pytorch(device):
    """PyTorch's documented clipping under a scaler: unscale_, clip_grad_norm_, step, update."""
    torch = pytest.importorskip("torch")
    values = np.linspace(-1.0, 1.0, 12, dtype=np.float32)
    p = gpugrad.tensor(values, requires_grad=True, device=device)
    q = torch.nn.Parameter(torch.tensor(values))
    opt, topt = optim.AdamW([p], lr=0.05), torch.optim.AdamW([q], lr=0.05)
    ours, theirs = gpugrad.GradScaler(init_scale=1024.0), torch.amp.GradScaler("cpu", init_scale=1024.0)
    for i in range(4):
        grad = (np.sin(values * (i + 2)) * 3).astype(np.float32)
        ours.scale(gpugrad.tensor(np.float32(1.0), device=device))
        theirs.scale(torch.ones(()))
        p.grad = gpugrad.tensor(grad * np.float32(ours.get_scale()), device=device)
        q.grad = torch.tensor(grad) * theirs.get_scale()
        ours.unscale_(opt)
        theirs.unscale_(topt)
        norm = nn.utils.clip_grad_norm_([p], max_norm=1.0)
        torch_norm = torch.nn.utils.clip_grad_norm_([q], max_norm=1.0)
        np.testing.assert_allclose(float(norm), float(torch_norm), rtol=1e-6)
        ours.step(opt)
        theirs.step(topt)
        ours.update()
        theirs.update()
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-7)
    with pytest.raises(RuntimeError, match="unscale_\\(\\) was already called"):
        ours.scale(gpugrad.tensor(np.float32(1.0), device=device))
        ours.unscale_(opt)
        ours.unscale_(opt)


@pytest.mark.gpu
def test_a_float16_step_with_the_scaler_never_reads_the_device(cuda):
    """After the first step, unscale, the optimizer's skip and the scale's update run under a CUDA stream
    capture, which refuses any copy to the host or synchronization; the steps equal the same steps on the CPU.
    (The scale is 1024: the default 65536 would make the float16 gradients overflow, 65536 * 2 > 65504, and skip
    the first steps, and SGD's first momentum step, which reads the flag on the host, would be the captured one.)"""
    import cupy
    for kind, hyper in (("AdamW", dict(lr=1e-3)), ("SGD", dict(lr=0.1, momentum=0.9))):
        results = {}
        for device in ("cpu", cuda):
            p = gpugrad.tensor(np.ones(1000, np.float32), requires_grad=True, device=device)
            opt, scaler = getattr(optim, kind)([p], **hyper), gpugrad.GradScaler(init_scale=1024.0)
            stream = cupy.cuda.Stream(non_blocking=True)  # one stream: its pool's blocks are reused in the capture
            for step in range(3):
                with stream:
                    scaler.scale((p.half() * 2).float().sum()).backward()
                    capture = step == 2 and device != "cpu"
                    if capture:
                        stream.begin_capture()
                    scaler.step(opt)
                    scaler.update()
                    if capture:
                        stream.end_capture().launch(stream=stream)
                stream.synchronize()
                opt.zero_grad()
            results[device] = (scaler.get_scale(), p.numpy())
        assert results["cpu"][0] == results[cuda][0] == 1024.0
        np.testing.assert_allclose(results[cuda][1], results["cpu"][1], rtol=1e-6)
        assert results[cuda][1][0] < results["cpu"][1][0] + 1e-6 < 1.0


def test_scaler_state_dict_round_trip_and_checks():
    scaler = gpugrad.GradScaler(init_scale=4.0, growth_interval=5)
    other = gpugrad.GradScaler()
    other.load_state_dict(scaler.state_dict())
    assert other.get_scale() == 4.0 and other.state_dict() == scaler.state_dict()
    with pytest.raises(ValueError, match="growth_factor"):
        gpugrad.GradScaler(growth_factor=0.5)


@pytest.mark.parametrize("precision", LOW)
def test_a_compiled_mixed_precision_step_equals_the_eager_one(precision):
    scaler = (lambda: gpugrad.GradScaler()) if precision == "float16" else (lambda: None)
    eager, _ = _mlp_run("cpu", precision, steps=30, scaler=scaler())
    compiled, _ = _mlp_run("cpu", precision, steps=30, scaler=scaler(), compiled=True)
    np.testing.assert_array_equal(compiled, eager)


def test_bfloat16_tensors_and_modules():
    x = gpugrad.tensor(np.linspace(-2, 2, 7, dtype=np.float32), requires_grad=True)
    y = x.bfloat16()
    assert y.dtype == gpugrad.bfloat16 and (y * y).dtype == gpugrad.bfloat16
    assert (y + x).dtype == np.float32 and (y + y.half()).dtype == np.float32  # PyTorch's promotion
    (y.float() ** 2).sum().backward()
    assert x.grad.dtype == np.float32
    model = nn.Linear(3, 2).bfloat16()
    assert model.weight.dtype == gpugrad.bfloat16
    out = model(gpugrad.ones((4, 3)).bfloat16())
    assert out.dtype == gpugrad.bfloat16


def test_the_precision_flags_of_train_and_bench(tmp_path):
    """`gpugrad train --precision fp16` (autocast + GradScaler, the scaler in the checkpoint) and
    `gpugrad bench --precision bf16` (gpugrad and PyTorch under autocast) as a user runs them."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "gpugrad", "train", "--precision", "fp16", "--epochs", "2", "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test accuracy" in done.stdout and "scaler" in gpugrad.load(str(tmp_path / "run" / "checkpoint.npz"))
    done = subprocess.run([sys.executable, "-m", "gpugrad", "bench", "--device", "cpu", "--model", "lecture", "--quick",
                           "--rounds", "1", "--precision", "bf16"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gpugrad" in done.stdout and "numpy" in done.stdout


def test_train_precision_bf16_on_digits():
    from gpugrad.app.train import TrainConfig, train
    _, history = train(TrainConfig(precision="bf16", progress=False), log=lambda *_: None)  # the defaults otherwise
    assert history[-1]["test_accuracy"] >= 0.97


@pytest.mark.gpu
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "leaky_relu", "elu"])
def test_bfloat16_kernels_match_the_cpu_formulas(cuda, activation):
    """The kernels instantiated for __nv_bfloat16 (computed in float) against the xp formulas, one bf16 ulp."""
    from gpugrad.backend import get_backend
    from gpugrad.ops.activation import apply_backward, apply_forward
    from gpugrad.ops.matmul import bias_act_backward, bias_act_forward
    cpu, gpu, bf16 = get_backend("cpu"), get_backend(cuda), gpugrad.bfloat16
    rng = np.random.default_rng(3)
    z, bias, g = (rng.standard_normal(s).astype(np.float32).astype(bf16) for s in ((300, 70), (70,), (300, 70)))
    param = 0.1 if activation in ("leaky_relu", "elu") else 0.0
    close = dict(rtol=8e-3, atol=1e-6)
    y = bias_act_forward(cpu, z.copy(), bias, activation, param)
    y_gpu = bias_act_forward(gpu, gpu.asarray(z), gpu.asarray(bias), activation, param)
    np.testing.assert_allclose(gpu.to_numpy(y_gpu).astype(np.float32), y.astype(np.float32), **close)
    pre, grad_bias = bias_act_backward(cpu, y, g, activation, param, True)
    pre_gpu, grad_bias_gpu = bias_act_backward(gpu, gpu.asarray(y), gpu.asarray(g), activation, param, True)
    np.testing.assert_allclose(gpu.to_numpy(pre_gpu).astype(np.float32), pre.astype(np.float32), **close)
    np.testing.assert_allclose(gpu.to_numpy(grad_bias_gpu).astype(np.float32), grad_bias.astype(np.float32),
                               rtol=2e-2, atol=1e-2)
    if activation is not None:
        forward = apply_forward(gpu, activation, gpu.asarray(z), param)
        np.testing.assert_allclose(gpu.to_numpy(forward).astype(np.float32),
                                   apply_forward(cpu, activation, z, param).astype(np.float32), **close)
        backward = apply_backward(gpu, activation, gpu.asarray(y), gpu.asarray(g), param)
        np.testing.assert_allclose(gpu.to_numpy(backward).astype(np.float32),
                                   apply_backward(cpu, activation, y, g, param).astype(np.float32), **close)
