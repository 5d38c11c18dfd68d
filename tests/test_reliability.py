"""Nothing silently wrong: one regression test per class of edge case (mixed dtypes, in-place changes
after saving, integers in real math, axes, special points, empty tensors, checkpoints, constructors,
wasted work). Each ran against the code before its fix and failed there."""
import numpy as np
import pytest

import gpugrad
import gpugrad.functional as F
from gpugrad import nn, optim
from gpugrad.utils import data


def _t(values, dtype=np.float64, requires_grad=True, device="cpu"):
    return gpugrad.tensor(np.asarray(values, dtype=dtype), requires_grad=requires_grad, device=device)


# -- 1. mixed float32 / float64, and integers that leaked float64 ------------------------------------

def test_matmul_and_linear_refuse_mixed_dtypes_in_the_forward_naming_both(device):
    model = nn.MLP([8, 4, 2]).to(device)
    x64 = gpugrad.tensor(np.random.default_rng(0).random((3, 8)), device=device)
    with pytest.raises(TypeError, match=r"linear: the input and the weight have different dtypes \(float64 and "
                                        r"float32\); convert the input .*model.double\(\)"):
        model(x64)
    with pytest.raises(TypeError, match=r"matmul: the operands have different dtypes \(float64 and float32\)"):
        x64 @ gpugrad.ones(8, 2, device=device)
    out = model.double()(x64)  # the fix the message names
    out.sum().backward()
    assert out.dtype == np.float64 and model[0].weight.grad.dtype == np.float64


@pytest.mark.parametrize("join", [F.concatenate, F.stack])
def test_joining_mixed_dtypes_promotes_and_each_input_gets_its_own_dtype(device, join):
    a, b = _t(np.ones((2, 3)), np.float64, device=device), _t(np.ones((2, 3)), np.float32, device=device)
    y = join([a, b])
    (y * 3).sum().backward()
    assert y.dtype == np.float64
    assert a.grad.dtype == np.float64 and b.grad.dtype == np.float32
    np.testing.assert_array_equal(b.grad.numpy(), np.full((2, 3), 3, np.float32))


def test_elementwise_ops_promote_as_pytorch_does(device):
    i64 = gpugrad.tensor(np.array([1, 2, 3]), device=device)
    i32 = gpugrad.tensor(np.array([1, 2], np.int32), device=device)
    f32 = gpugrad.tensor([1.0, 3.0], device=device)
    f64_0d = _t(2.0, requires_grad=False, device=device)
    f16 = gpugrad.tensor(np.ones(3, np.float16), device=device)
    assert (i64 + 0.5).dtype == np.float32        # numpy: float64
    assert (i64 / i64).dtype == np.float32
    assert i64.exp().dtype == np.float32
    assert (i64 ** 0.5).dtype == np.float32
    assert (i64 ** 2).dtype == np.int64
    assert F.maximum(i32, f32).dtype == np.float32  # numpy: float64
    assert (f32 + f64_0d).dtype == np.float32       # a 0-d tensor does not upcast a dimensioned one
    assert (i64 + f16).dtype == np.float16
    assert (i64 + f64_0d).dtype == np.float64       # ... unless its category is higher
    assert (gpugrad.tensor(np.array([True, False]), device=device) + 1).dtype == np.int64


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_short_path_for_a_python_number_gives_what_the_general_rule_gives(device, dtype):
    """A float CPU tensor meeting a Python int or float skips the general promotion rule (operands.as_tensor_like);
    a float subclass, which the short path does not take, goes through the rule: both must agree bit for bit."""
    class Number(float):
        pass
    x = gpugrad.tensor(np.array([0.1, -2.5, 3e4, 0.0], dtype), device=device, requires_grad=True)
    operations = [lambda a, n: a * n, lambda a, n: n * a, lambda a, n: a - n, lambda a, n: n - a, lambda a, n: a / n,
                  lambda a, n: n / a, lambda a, n: a ** n, lambda a, n: a + n]
    with np.errstate(all="ignore"):
        for n in (2, 0.5, -3, 1e-8, 7.25, 1e5):
            for k, op in enumerate(operations):
                short, general = op(x, n), op(x, Number(n))
                assert short.dtype == general.dtype == dtype, (k, n)
                np.testing.assert_array_equal(short.numpy(), general.numpy(), err_msg=f"operation {k}, number {n}")
                grads = []
                for y in (short, general):
                    x.grad = None
                    y.sum().backward()
                    grads.append(x.grad.numpy())
                np.testing.assert_array_equal(*grads, err_msg=f"gradient of operation {k}, number {n}")


def test_a_float32_input_meeting_float64_gets_a_float32_gradient(device):
    a, b = _t([1.0, 2.0], np.float32, device=device), _t([3.0, 4.0], np.float64, device=device)
    (a * b + a / b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_the_dataloader_hands_float32_to_float32_models():
    X, y = np.random.default_rng(0).random((10, 4)), np.arange(10)
    xb, yb = next(iter(data.DataLoader(X, y, batch_size=5)))
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    nn.MLP([4, 3]).forward(xb).sum().backward()
    xb, _ = next(iter(data.DataLoader(X, y, batch_size=5, dtype=None)))
    assert xb.dtype == np.float64


# -- 2. changing what backward needs ---------------------------------------------------------------

def test_an_in_place_change_after_saving_is_refused_by_backward():
    x = _t([1.0, 2.0])
    y = (x * x).sum()
    with gpugrad.no_grad():
        x += 1
    with pytest.raises(RuntimeError, match=r"Mul: input 0 \(a tensor of shape \(2,\), dtype float64\) was changed "
                                           r"in place after Mul saved it for backward \(it is at version 1 now\)"):
        y.backward()


@pytest.mark.parametrize("change", [
    lambda x: x.__setitem__(0, 5.0),
    lambda x: x.add_(1),
    lambda x: x.mul_(2),
    lambda x: x.zero_(),
    lambda x: x.copy_(gpugrad.tensor(np.zeros(2))),
])
def test_every_in_place_method_bumps_the_version(change):
    x = _t([1.0, 2.0])
    y = x.exp().sum() + (x * x).sum()
    before = x.version
    with gpugrad.no_grad():
        change(x)
    assert x.version == before + 1
    with pytest.raises(RuntimeError, match="was changed in place"):
        y.backward()


def test_an_optimizer_step_between_forward_and_backward_is_caught():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = model(gpugrad.ones(4, 3)).sum()
    model.weight.grad = gpugrad.ones(2, 3)
    opt.step()
    with pytest.raises(RuntimeError, match="Linear: input 1 .* was changed in place"):
        loss.backward()


def test_a_saved_output_changed_in_place_is_caught_and_unsaved_inputs_are_not():
    x = _t([0.5, -1.0])
    y = x.sigmoid()
    z = y.sum()
    with gpugrad.no_grad():
        y *= 2
    with pytest.raises(RuntimeError, match="Sigmoid: output 0"):
        z.backward()
    a = _t([1.0, 2.0])
    b = (a + 1).sum()  # Add saves nothing: changing a afterwards is fine (PyTorch's rule)
    with gpugrad.no_grad():
        a += 1
    b.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1, 1])


def test_writing_into_data_is_not_tracked_as_documented():
    x = _t([1.0, 2.0])
    y = (x * x).sum()
    x.data[...] = 10  # the raw array: outside the version counter, as PyTorch's .data
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [20, 20])
    assert "not tracked" in gpugrad.Tensor.__doc__


def test_in_place_on_a_tensor_that_requires_grad_is_refused_while_recording():
    x = _t([1.0])
    with pytest.raises(RuntimeError, match=r"\+=: in-place change of a tensor that requires grad"):
        x += 1
    with pytest.raises(RuntimeError, match="setitem: in-place change"):
        x[0] = 2.0


# -- 3. integer data in real-valued ops ------------------------------------------------------------

def test_integer_logits_are_refused_and_integer_softmax_is_computed_in_float32(device):
    logits = gpugrad.tensor(np.array([[1, 2], [3, 4]]), device=device)
    with pytest.raises(TypeError, match="cross_entropy: logits must be floating point, got dtype int64"):
        F.cross_entropy(logits, [0, 1])
    with pytest.raises(TypeError, match="mse_loss: predictions must be floating point"):
        F.mse_loss(logits, logits)
    with pytest.raises(TypeError, match="svm_loss: scores must be floating point"):
        F.svm_loss(logits, [0, 1])
    soft = F.softmax(gpugrad.tensor(np.array([1, 2]), device=device))
    assert soft.dtype == np.float32
    np.testing.assert_allclose(soft.numpy(), np.exp([1, 2]) / np.exp([1, 2]).sum(), rtol=1e-6)
    for op in (lambda t: t.sigmoid(), lambda t: t.tanh(), lambda t: t.log(), lambda t: t.sqrt(), F.log_softmax):
        assert op(gpugrad.tensor(np.array([1, 2]), device=device)).dtype == np.float32
    assert gpugrad.tensor(np.array([-1, 2]), device=device).relu().numpy().tolist() == [0, 2]


# -- 4. axes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,error,message", [
    (lambda: gpugrad.zeros(1, 3).squeeze(2), IndexError, r"squeeze: axis 2 is out of range for shape \(1, 3\)"),
    (lambda: gpugrad.zeros(1, 3).unsqueeze(5), IndexError, r"unsqueeze: axis 5 is out of range for shape \(1, 3\)"),
    (lambda: gpugrad.zeros(2, 3).swapaxes(0, 2), IndexError, r"swapaxes: axis 2 is out of range for shape \(2, 3\)"),
    (lambda: F.concatenate([]), ValueError, "concatenate: expected a non-empty sequence"),
    (lambda: F.stack([]), ValueError, "stack: expected a non-empty sequence"),
    (lambda: gpugrad.zeros(2, 3).sum(axis=1.5), TypeError, r"sum: axis must be an integer, got 1.5"),
    (lambda: gpugrad.zeros(2, 3).max(axis=(0, 0)), ValueError, "max: repeated axis"),
    (lambda: F.softmax(gpugrad.zeros(2, 3), axis=2), IndexError, r"softmax: axis 2 is out of range for shape \(2, 3\)"),
    (lambda: F.concatenate([gpugrad.zeros(2), gpugrad.zeros(2)], axis=1), IndexError, "concatenate: axis 1"),
    (lambda: gpugrad.zeros(2, 3).permute(0, 0), ValueError, "transpose: axes"),
])
def test_bad_axes_name_the_op_the_axis_and_the_shape(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_zero_d_tensors_take_axis_0_and_minus_1_as_pytorch():
    x = _t(2.0)
    assert x.squeeze(0).shape == () and x.squeeze(-1).shape == () and x.unsqueeze(0).shape == (1,)
    y = x.sum(axis=0) + x.mean(axis=-1) + x.max(axis=0)
    y.backward()
    assert y.shape == () and x.grad.item() == 3.0


# -- 5. gradients at special points ----------------------------------------------------------------

def test_pow_gradients_at_special_points_follow_pytorch(device):
    x = _t([0.0, 1.0, 2.0], device=device)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0])
    base, exponent = _t([0.0, 0.0, 2.0], device=device), _t([2.0, 0.0, 3.0], device=device)
    (base ** exponent).sum().backward()
    np.testing.assert_array_equal(exponent.grad.numpy(), [0, 0, 8 * np.log(2)])
    np.testing.assert_array_equal(base.grad.numpy(), [0, 0, 12])


def test_mse_loss_of_0d_tensors(device):
    p = _t(1.0, device=device)
    loss = F.mse_loss(p, _t(3.0, requires_grad=False, device=device))
    loss.backward()
    assert loss.item() == 4.0 and p.grad.item() == -4.0


# -- 6. empty tensors ------------------------------------------------------------------------------

def test_empty_tensors_follow_pytorch(device):
    e = _t(np.zeros((0, 3)), device=device)
    assert e.max(axis=1).shape == (0,) and e.min(axis=1, keepdims=True).shape == (0, 1)
    with pytest.raises(ValueError, match=r"max: cannot reduce over axis 0 of shape \(0, 3\)"):
        e.max(axis=0)
    (F.softmax(e, axis=0).sum() + F.log_softmax(e, axis=0).sum() + e.max(axis=1).sum()).backward()
    assert e.grad.shape == (0, 3)
    a, b = _t(np.zeros((3, 0)), device=device), _t(np.zeros((0, 4)), device=device)
    (a @ b).sum().backward()
    assert a.grad.shape == (3, 0) and b.grad.shape == (0, 4)
    x, w, bias = _t(np.zeros((3, 0)), device=device), _t(np.zeros((4, 0)), device=device), _t(np.zeros(4), device=device)
    F.linear(x, w, bias, activation="relu").sum().backward()
    assert w.grad.shape == (4, 0) and bias.grad.numpy().tolist() == [0] * 4  # relu'(0) = 0
    empty_batch = _t(np.zeros((0, 3)), device=device)
    loss = F.cross_entropy(empty_batch, np.zeros(0, np.int64))
    assert np.isnan(loss.item())  # a mean over nothing, as PyTorch
    loss.backward()
    assert empty_batch.grad.shape == (0, 3)
    assert np.isnan(F.mse_loss(_t(np.zeros(0), device=device), _t(np.zeros(0), device=device)).item())
    assert F.mse_loss(_t(np.zeros(0), device=device), _t(np.zeros(0), device=device), reduction="sum").item() == 0
    assert np.isnan(_t(np.zeros(0), device=device).mean().item())


# -- 7. saving and loading -------------------------------------------------------------------------

def test_every_structure_round_trips_or_is_refused_at_save_time(tmp_path):
    t1, t2 = gpugrad.tensor([1.0, 2.0]), gpugrad.tensor([3.0, 4.0])
    obj = {"a/b": t1, "a": {"b": t2}, "__gpugrad_structure__": "a key like the index", 3: "int key",
           2.5: (1, None), True: [float("nan"), float("-inf")], None: np.float32(1.5), "arr": np.arange(3)}
    gpugrad.save(obj, tmp_path / "c.npz")
    back = gpugrad.load(tmp_path / "c.npz")
    assert list(back) == list(obj)
    assert back["a/b"].numpy().tolist() == [1, 2] and back["a"]["b"].numpy().tolist() == [3, 4]
    assert back["__gpugrad_structure__"] == "a key like the index" and back[3] == "int key"
    assert back[2.5] == (1, None) and np.isnan(back[True][0]) and back[True][1] == -np.inf
    assert back[None] == np.float32(1.5) and type(back[None]) is np.float32
    for bad, message in (({"s": {1, 2}}, r"cannot store a set at \['s'\]"), ({(1, 2): 1}, "dict key \\(1, 2\\)"),
                         ({"o": np.array(["x"])}, "dtype <U1")):
        with pytest.raises(TypeError, match=message):
            gpugrad.save(bad, tmp_path / "bad.npz")
        assert not (tmp_path / "bad.npz").exists()


def test_bad_files_say_which_file_and_what_is_wrong(tmp_path):
    good = tmp_path / "good.npz"
    gpugrad.save({"w": gpugrad.ones(100)}, good)
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:200])
    (tmp_path / "text.npz").write_text("hello")
    np.save(tmp_path / "one.npy", np.ones(2))
    cases = [("cut.npz", "damaged or truncated zip"), ("text.npz", "not an .npz archive"),
             ("one.npy", "a single .npy array")]
    for name, message in cases:
        with pytest.raises(gpugrad.CheckpointError, match=f"{name}.*{message}"):
            gpugrad.load(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        gpugrad.load(tmp_path / "missing.npz")


def test_a_pytorch_checkpoint_is_named_as_one(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "t.pt")
    with pytest.raises(gpugrad.CheckpointError, match=r"t.pt is a zip archive but not an .npz.*PyTorch .pt checkpoint"):
        gpugrad.load(tmp_path / "t.pt")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    gpugrad.save({"epoch": 1}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies mid-write

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        gpugrad.save({"epoch": 2}, path)
    assert gpugrad.load(path) == {"epoch": 1} and [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


def test_load_state_dict_reports_every_mismatch_and_changes_nothing():
    model = nn.MLP([4, 3, 2])
    before = [p.numpy() for p in model.parameters()]
    state = {k: v.numpy() + 1 for k, v in model.state_dict().items()}
    state["0.weight"] = np.zeros((2, 2))
    state["2.bias"] = np.zeros(5)
    del state["0.bias"]
    with pytest.raises(KeyError, match=r"0.weight has shape \(2, 2\).*; 2.bias has shape \(5,\).*; missing keys "
                                       r"\['0.bias'\] \(nothing was loaded\)"):
        model.load_state_dict(state)
    assert all((b == p.numpy()).all() for b, p in zip(before, model.parameters()))
    opt = optim.Adam(model.parameters())
    with pytest.raises(ValueError, match=r"parameter groups of sizes \[1\] for groups of sizes \[4\]"):
        opt.load_state_dict({"state": {}, "param_groups": [{"params": [0]}]})


# -- 8. constructors and options -------------------------------------------------------------------

@pytest.mark.parametrize("make,error,message", [
    (lambda p: optim.SGD(p, lr=float("nan")), ValueError, r"SGD: lr must be a finite number in \(0, inf\), got nan"),
    (lambda p: optim.Adam(p, lr=float("nan")), ValueError, "Adam: lr must be a finite number"),
    (lambda p: optim.AdamW(p, weight_decay=float("inf")), ValueError, "AdamW: weight_decay must be a finite"),
    (lambda p: optim.SGD(p, lr="0.1"), TypeError, r"SGD: lr must be a number, got '0.1' \(str\)"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-1), ValueError, "SGD: momentum must be"),
    (lambda p: optim.Adam(p, betas=(0.9,)), TypeError, "Adam: betas must be a pair"),
])
def test_optimizer_hyperparameters_are_checked(make, error, message):
    with pytest.raises(error, match=message):
        make([nn.Parameter(gpugrad.ones(2))])


def test_tensors_of_non_numbers_are_refused_and_numpy_gets_numbers():
    for bad in (["a", "b"], None, "text", {"a": 1}):
        with pytest.raises(TypeError, match="tensor: cannot make a tensor"):
            gpugrad.tensor(bad)
    with pytest.raises(TypeError, match="Tensor: cannot make a tensor of dtype object"):
        gpugrad.Tensor(np.array([object()]))
    array = np.asarray(gpugrad.tensor([1.0, 2.0]))
    assert array.dtype == np.float32 and array.tolist() == [1.0, 2.0]
    assert np.asarray(gpugrad.tensor([1.0, 2.0]), dtype=np.float64).dtype == np.float64


def test_cuda_memory_statistics_without_cupy_raise_cuda_unavailable():
    from conftest import CUDA_SKIP
    if not CUDA_SKIP:
        pytest.skip("a GPU is usable here")
    for call in (gpugrad.cuda.memory_allocated, gpugrad.cuda.max_memory_allocated, gpugrad.cuda.empty_cache,
                 gpugrad.cuda.reset_peak_memory_stats):
        with pytest.raises(gpugrad.CudaUnavailableError):
            call()


# -- 9. wasted work --------------------------------------------------------------------------------

def test_adam_allocates_its_state_once(monkeypatch):
    p = nn.Parameter(gpugrad.ones(1000))
    opt = optim.Adam([p])
    p.grad = gpugrad.ones(1000)
    opt.step()
    m = opt.state[p]["exp_avg"]
    calls = []
    real = np.zeros_like
    monkeypatch.setattr(np, "zeros_like", lambda *a, **k: calls.append(1) or real(*a, **k))
    for _ in range(3):
        opt.step()
    assert calls == [] and opt.state[p]["exp_avg"] is m


def test_more_of_each_class_names_the_op():
    with gpugrad.no_grad():
        with pytest.raises(TypeError, match=r"\+=: cannot update a tensor of shape \(2,\) and dtype int64"):
            gpugrad.tensor(np.array([1, 2])).__iadd__(0.5)
    for call, error, message in [
        (lambda: gpugrad.zeros(3).reshape(1.5), TypeError, "reshape: sizes must be integers"),
        (lambda: gpugrad.zeros(2.5), TypeError, "sizes must be integers"),
        (lambda: gpugrad.zeros(-1), ValueError, r"negative sizes in shape \(-1,\)"),
        (lambda: optim.SGD(nn.MLP([2, 2]), lr=0.1), TypeError, "SGD: expected tensors .*got a Linear"),
        (lambda: F.leaky_relu(gpugrad.ones(2), float("nan")), ValueError, "leaky_relu: negative_slope"),
        (lambda: F.elu(gpugrad.ones(2), float("inf")), ValueError, "elu: alpha"),
        (lambda: gpugrad.save({}, "/nonexistent-folder/x.npz"), FileNotFoundError, "gpugrad.save: cannot write"),
        (lambda: data.DataLoader(np.ones((3, 2)), np.ones(3), batch_size=2.5), TypeError, "batch_size must be an int"),
        (lambda: gpugrad.zeros(3).__setitem__(5, 1.0), IndexError, r"setitem on a tensor of shape \(3,\)"),
        (lambda: gpugrad.tensor(np.array([2])) ** -1, ValueError, "pow: integers to negative integer powers"),
        (lambda: -gpugrad.tensor(np.array([True])), TypeError, "neg: a bool tensor has no negation"),
    ]:
        with pytest.raises(error, match=message):
            call()
    assert gpugrad.tensor(1.0).swapaxes(0, -1).shape == ()


def test_initialisers_bump_the_version():
    layer = nn.Linear(3, 2)
    before = layer.weight.version
    nn.init.uniform_(layer.weight, -1, 1)
    nn.init.zeros_(layer.weight)
    assert layer.weight.version == before + 2


def test_the_new_layers_keep_the_classes():
    ints = gpugrad.tensor(np.array([[1, 2, 3]]))
    assert F.layer_norm(ints, 3).dtype == np.float32 and F.dropout(ints, 0.5).dtype == np.float32
    for call, message in ((lambda: nn.Linear(2.5, 3), "Linear: in_features must be an integer >= 1, got 2.5"),
                          (lambda: nn.BatchNorm1d(-1), "BatchNorm1d: num_features must be an integer >= 1"),
                          (lambda: nn.Embedding(0, 3), "Embedding: num_embeddings must be an integer >= 1"),
                          (lambda: optim.lr_scheduler.StepLR(optim.SGD([nn.Parameter(gpugrad.ones(1))], lr=0.1), 0),
                           "StepLR: step_size must be an integer >= 1"),
                          (lambda: F.batch_norm(gpugrad.zeros(0, 3), None, None, training=True),
                           "batch_norm: training needs more than one value per channel")):
        with pytest.raises(ValueError, match=message):
            call()
    x = gpugrad.zeros(3, requires_grad=True)
    x.norm().backward()
    assert x.grad.numpy().tolist() == [0, 0, 0]  # the norm's gradient at 0 is 0, as PyTorch's
    e = gpugrad.zeros(2, 0, requires_grad=True)
    e.prod(dim=1).sum().backward()
    assert e.prod(dim=1).numpy().tolist() == [1, 1] and e.grad.shape == (2, 0)


def test_bfloat16_without_ml_dtypes_names_the_extra():
    import subprocess
    import sys
    code = ("import sys; sys.modules['ml_dtypes'] = None\n"
            "import gpugrad\n"
            "for ask in (lambda: gpugrad.bfloat16, lambda: gpugrad.autocast('bfloat16'), lambda: gpugrad.ones(2).bfloat16()):\n"
            "    try:\n        ask()\n    except ImportError as e:\n        print(e)\n"
            "with gpugrad.autocast('float16'):\n    print((gpugrad.ones((2, 2)) @ gpugrad.ones((2, 2))).dtype)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and all("pip install 'gpugrad[bf16]'" in line for line in lines[:3]) and lines[3] == "float16"


@pytest.mark.gpu
def test_a_device_array_is_never_taken_for_a_host_one(cuda):
    """The stand-in's device arrays are numpy subclasses (CuPy's are not): gpugrad tells host arrays apart by
    ``is_host_array``, so that a path taken on the stand-in is the one a card takes."""
    import cupy
    from gpugrad.backend import is_host_array
    a = cupy.ones(3, dtype=np.float32)
    assert not is_host_array(a) and is_host_array(np.ones(3)) and not is_host_array(np.float32(1))
    with pytest.raises(TypeError, match="from_numpy: expected a numpy array, got ndarray"):
        gpugrad.from_numpy(a)
    t = gpugrad.ones(3, device=cuda)
    with pytest.raises(TypeError, match="can't convert a tensor on cuda:0 to a numpy array"):
        np.asarray(t)
    host = t.backend.to_numpy(t.data)
    assert type(host) is np.ndarray and host.tolist() == [1.0, 1.0, 1.0]
    assert t.index_select(0, gpugrad.tensor([2, 0], dtype=gpugrad.long, device=cuda)).numpy().tolist() == [1.0, 1.0]


@pytest.mark.gpu
def test_where_and_masked_fill_refuse_a_condition_on_another_device(cuda):
    """CuPy refuses a numpy array among its arguments (TypeError 'Unsupported type'); PyTorch says the devices differ."""
    x = gpugrad.ones((2, 3), device=cuda)
    mask = gpugrad.tensor(np.array([True, False, True]))
    for call in (lambda: x.masked_fill(mask, 0.5), lambda: gpugrad.where(mask, x, 0.0)):
        with pytest.raises(gpugrad.DeviceMismatchError, match=r"where: the condition is on cpu and the values on "
                                                             r"cuda:0 \(condition \(3,\)\); move it with .to\('cuda:0'\)"):
            call()
    assert x.masked_fill(mask.to(cuda), 0.5).numpy().tolist() == [[0.5, 1.0, 0.5]] * 2


@pytest.mark.gpu
def test_an_index_or_labels_on_another_device_are_refused_as_pytorch_does(cuda):
    """PyTorch: 'Expected all tensors to be on the same device' for gather, scatter_add, index_select, the losses'
    labels, an embedding's indices, bincount's weights. A CPU label tensor for CUDA logits was copied to the device
    at every step (and cannot be inside a captured one); refused now, naming the op, the role and both devices.
    Indexing with a CPU tensor stays allowed (PyTorch allows it); arrays and lists are moved."""
    x = gpugrad.randn(4, 5, device=cuda, requires_grad=True)
    index = gpugrad.tensor(np.array([[0, 1], [2, 3], [4, 0], [1, 1]]), dtype=gpugrad.long)
    labels = gpugrad.tensor(np.array([0, 1, 2, 3]), dtype=gpugrad.long)
    refused = {
        "gather: the index": lambda: x.gather(1, index),
        "scatter_add: the index": lambda: x.scatter_add(1, index, gpugrad.ones(4, 2, device=cuda)),
        "index_select: the index": lambda: x.index_select(1, labels),
        "cross_entropy: the labels": lambda: F.cross_entropy(x, labels),
        "cross_entropy: the labels ": lambda: F.cross_entropy(x, labels, label_smoothing=0.1),
        "nll_loss: the labels": lambda: F.nll_loss(F.log_softmax(x, dim=1), labels),
        "svm_loss: the labels": lambda: F.svm_loss(x, labels),
        "embedding: the indices": lambda: nn.Embedding(10, 3).to(cuda)(labels),
        "bincount: the weights": lambda: labels.to(cuda).bincount(weights=gpugrad.ones(4)),
    }
    for start, call in refused.items():
        with pytest.raises(gpugrad.DeviceMismatchError, match=rf"^{start.strip()} (is|are) on cpu and the \S+ on "
                                                             r"cuda:0; move (it|them) with .to\('cuda:0'\)$"):
            call()
    assert x[labels].shape == (4, 5) and x[labels].device == "cuda:0"
    assert F.cross_entropy(x, np.array([0, 1, 2, 3])).device == "cuda:0"
    assert F.cross_entropy(x, labels.to(cuda)).device == "cuda:0"
