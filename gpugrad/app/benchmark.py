"""``gpugrad bench``: the same training step through gpugrad, hand-written numpy and PyTorch, on each device.

Candidates run interleaved in rounds after a warm-up, GPU work synchronized before every clock
read; the table gives the median step time of each, and ratios as the median over rounds of the
ratio within a round (paired: robust to a machine whose speed drifts from minute to minute).
Models: the lecture's 2-layer net (64 x 1000-100-10, squared error, SGD; "written": the same step as a
user writes it, ``((sigmoid(x @ w1) @ w2 - y) ** 2).sum()`` and updates through ``.data``), an MLP 784-1024-1024-10
at batch 256 (cross-entropy, SGD), and on the GPU 4 layers of 4096 at batch 4096.
"""
from __future__ import annotations

import contextlib
import json
import statistics
import sys

import numpy as np

import gpugrad
import gpugrad.functional as F
from .. import optim
from ..amp import PRECISIONS
from ..backend import CudaUnavailableError, get_backend
from ..ops.matmul import set_matmul_precision
from .bench_report import matmul_ceiling_gflops, measure, plot, print_header, print_row



MODELS = {
    # name: (layer sizes, batch, biases, loss)
    "lecture": ([1000, 100, 10], 64, False, "sse"),
    "mlp": ([784, 1024, 1024, 10], 256, True, "xent"),
    "large": ([4096, 4096, 4096, 4096, 4096], 4096, True, "xent"),
}


def add_arguments(parser):
    parser.add_argument("--device", default=None, help="comma-separated: cpu,cuda (default: cpu, plus cuda if usable)")
    parser.add_argument("--model", default=None, help="lecture, mlp, large, or comma-separated (default lecture,mlp)")
    parser.add_argument("--activation", default="sigmoid", choices=("sigmoid", "relu"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--quick", action="store_true", help="few rounds, small steps: under a minute on 2 cores")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7, quick 3)")
    parser.add_argument("--compile", action="store_true", help="also the gpugrad step through gpugrad.compile")
    parser.add_argument("--precision", default="fp32", choices=tuple(PRECISIONS),
                        help="gpugrad's and PyTorch's steps: tf32 GEMMs (GPU), bf16 or fp16 autocast (fp16 with a GradScaler)")
    parser.add_argument("--nproc", type=int, default=1, help="N > 1: the MLP step on N data-parallel ranks "
                        "(mpiexec) against one process: step time and scaling efficiency")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--plot", default=None, help="write a PNG bar chart here (needs matplotlib)")


# -- the step, four ways --------------------------------------------------------------------------

_shared = None  # {arguments: arrays} while shared_arrays() is open


@contextlib.contextmanager
def shared_arrays():
    """Inside, CPU candidates share their weights and data (numpy updates them in place, gpugrad wraps them with
    ``from_numpy``): a step's time on a 2-core CPU depends on where its weights lie (numpy's lecture step took
    267 or 357 us by their address alone), so candidates with copies of their own compare addresses too."""
    global _shared
    previous, _shared = _shared, {}
    try:
        yield
    finally:
        _shared = previous


def _tensor(array, device, requires_grad=False):
    if _shared is not None and device == "cpu":
        return gpugrad.from_numpy(array).requires_grad_(requires_grad)
    return gpugrad.tensor(array, device=device, requires_grad=requires_grad)


def _arrays(key, make):
    """``make()``; inside ``shared_arrays()``, what it made for ``key`` the first time."""
    if _shared is None:
        return make()
    if key not in _shared:
        _shared[key] = make()
    return _shared[key]


def _init(sizes, biases, dtype, seed=0):
    def make():
        rng = np.random.default_rng(seed)
        return ([(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])],
                [np.zeros(b, dtype) for b in sizes[1:]] if biases else None)
    return _arrays(("init", tuple(sizes), biases, np.dtype(dtype), seed), make)


def _data(sizes, batch, loss, dtype, seed=1):
    def make():
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, sizes[0])).astype(dtype)
        return x, rng.standard_normal((batch, sizes[-1])).astype(dtype) if loss == "sse" else rng.integers(0, sizes[-1], batch)
    return _arrays(("data", tuple(sizes), batch, loss, np.dtype(dtype), seed), make)


def numpy_step(state, x, y, activation, loss_kind, lr):
    """A careful hand-written numpy step (the lecture's 20 lines, generalised)."""
    weights, biases = state
    hs = [x]
    h = x
    for i, w in enumerate(weights):
        z = h @ w
        if biases is not None:
            z += biases[i]
        if i < len(weights) - 1:
            h = 1 / (1 + np.exp(-z)) if activation == "sigmoid" else np.maximum(z, 0)
            hs.append(h)
        else:
            h = z
    if loss_kind == "sse":
        diff = h - y
        loss = np.square(diff).sum()
        grad = 2.0 * diff
    else:
        shifted = h - h.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        total = e.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = (np.log(total[:, 0]) - shifted[rows, y]).mean()
        grad = e / total
        grad[rows, y] -= 1
        grad /= len(y)
    for i in range(len(weights) - 1, -1, -1):
        grad_w = hs[i].T @ grad
        if biases is not None:
            biases[i] -= lr * grad.sum(axis=0)
        if i > 0:
            grad = grad @ weights[i].T
            h = hs[i]
            grad *= h * (1 - h) if activation == "sigmoid" else (h > 0)
        weights[i] -= lr * grad_w
    return loss




def gpugrad_setup(sizes, batch, biases, loss_kind, activation, dtype, device, lr, precision="fp32"):
    weights, bias = _init(sizes, biases, dtype)
    x, y = _data(sizes, batch, loss_kind, dtype)
    X, Y = _tensor(x, device), _tensor(y, device)
    if loss_kind == "sse":  # the lecture's own program: weights (D_in, H), h = act(X W1), y = h W2
        W = [_tensor(w, device, requires_grad=True) for w in weights]
        opt = optim.SGD(W, lr=lr)
        act = F.sigmoid if activation == "sigmoid" else F.relu

        def lecture_loss():
            h = X
            for i, w in enumerate(W):
                h = h @ w
                if i < len(W) - 1:
                    h = act(h)
            return F.mse_loss(h, Y, reduction="sum")  # L = sum((y_pred - y)^2), the lecture's loss
        return _training_step(lecture_loss, opt, precision), gpugrad.get_backend(device).synchronize
    W = [gpugrad.tensor(w.T.copy(), device=device, requires_grad=True) for w in weights]  # (out, in) as nn.Linear
    B = [_tensor(b, device, requires_grad=True) for b in bias] if bias else [None] * len(W)
    opt = optim.SGD(W + [b for b in B if b is not None], lr=lr)
    last = len(W) - 1

    def mlp_loss():
        h = X
        for i, (w, b) in enumerate(zip(W, B)):
            h = F.linear(h, w, b, activation=activation if i < last else None)
        return F.mse_loss(h, Y, reduction="sum") if loss_kind == "sse" else F.cross_entropy(h, Y)
    return _training_step(mlp_loss, opt, precision), gpugrad.get_backend(device).synchronize


def _training_step(compute_loss, opt, precision):
    """The step as a user writes it: plain for fp32 and tf32; bf16 and fp16 under autocast, fp16 with a GradScaler."""
    low = gpugrad.amp.PRECISIONS[precision]
    if low is None:
        def step():
            loss = compute_loss()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
        return step
    scaler = gpugrad.GradScaler(enabled=precision == "fp16")

    def mixed_step():
        with gpugrad.autocast(low):
            loss = compute_loss()
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss
    return mixed_step


def written_setup(sizes, batch, biases, loss_kind, activation, dtype, device, lr):
    """The lecture's net as a user writes it: ((act(x @ w1) @ w2 - y) ** 2).sum(), update through .data."""
    weights, _ = _init(sizes, False, dtype)
    x, y = _data(sizes, batch, loss_kind, dtype)
    X, Y = _tensor(x, device), _tensor(y, device)
    w1, w2 = (_tensor(w, device, requires_grad=True) for w in weights)
    act = F.sigmoid if activation == "sigmoid" else F.relu

    def step():
        loss = ((act(X @ w1) @ w2 - Y) ** 2).sum()
        w1.grad = w2.grad = None
        loss.backward()
        w1.data -= lr * w1.grad.data
        w2.data -= lr * w2.grad.data
        return loss
    return step, gpugrad.get_backend(device).synchronize


def torch_setup(sizes, batch, biases, loss_kind, activation, dtype, device, lr, precision="fp32"):
    import torch
    low = getattr(torch, PRECISIONS[precision]) if PRECISIONS[precision] else None
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=precision == "fp16")
    weights, bias = _init(sizes, biases, dtype)
    x, y = _data(sizes, batch, loss_kind, dtype)
    W = [torch.tensor(w.T.copy(), device=device, requires_grad=True) for w in weights]
    B = [torch.tensor(b, device=device, requires_grad=True) for b in bias] if bias else [None] * len(W)
    opt = torch.optim.SGD(W + [b for b in B if b is not None], lr=lr)
    X = torch.tensor(x, device=device)
    Y = torch.tensor(y, device=device)
    act = torch.sigmoid if activation == "sigmoid" else torch.relu
    last = len(W) - 1

    def step():
        with torch.autocast(device.split(":")[0], dtype=low or torch.bfloat16, enabled=low is not None):
            h = X
            for i, (w, b) in enumerate(zip(W, B)):
                h = torch.nn.functional.linear(h, w, b)
                if i < last:
                    h = act(h)
            loss = torch.nn.functional.mse_loss(h, Y, reduction="sum") if loss_kind == "sse" else \
                torch.nn.functional.cross_entropy(h, Y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return step, sync


def compiled_setup(sizes, batch, biases, loss_kind, activation, dtype, device, lr, precision="fp32"):
    """gpugrad's step given to ``gpugrad.compile`` (a tape replay on the CPU, CUDA graphs on a GPU)."""
    step, sync = gpugrad_setup(sizes, batch, biases, loss_kind, activation, dtype, device, lr, precision)
    return gpugrad.compile(step, device=device), sync


def numpy_setup(sizes, batch, biases, loss_kind, activation, dtype, lr):
    state = _init(sizes, biases, dtype)
    x, y = _data(sizes, batch, loss_kind, dtype)
    return (lambda: numpy_step(state, x, y, activation, loss_kind, lr)), (lambda: None)


# -- measuring -------------------------------------------------------------------------------------

def step_flops(sizes, batch):
    forward = 2 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    input_grads = 2 * batch * sum(a * b for a, b in zip(sizes[1:-1], sizes[2:]))
    return 2 * forward + input_grads  # forward, weight gradients, input gradients (none for the data)


def _loss_value(loss):
    return float(loss.item() if hasattr(loss, "item") else loss)


def loss_difference(model, activation, dtype, impl, device, steps=5, precision="fp32"):
    """Largest relative |loss difference| over ``steps`` steps from the same start: ``impl`` ("gpugrad",
    "written" or "torch") on ``device`` against hand-written numpy on the CPU (numpy's own row: 0)."""
    sizes, batch, biases, loss_kind = MODELS[model]
    lr = 1e-4 if loss_kind == "sse" else 0.05
    if impl == "numpy":
        return 0.0
    ref_step, _ = numpy_setup(sizes, batch, biases, loss_kind, activation, dtype, lr)
    reference = [_loss_value(ref_step()) for _ in range(steps)]
    setup = {"gpugrad": gpugrad_setup, "compiled": compiled_setup, "written": written_setup, "torch": torch_setup}[impl]
    step, _ = setup(sizes, batch, biases, loss_kind, activation, dtype,
                    "cuda" if impl == "torch" and device != "cpu" else device, lr,
                    *((precision,) if impl != "written" else ()))
    losses = [_loss_value(step()) for _ in range(steps)]
    return max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(losses, reference))


def run(args) -> int:
    devices = [d.strip() for d in args.device.split(",")] if args.device else ["cpu"]
    if args.device is None:
        try:
            get_backend("cuda")
            devices.append("cuda")
        except CudaUnavailableError:
            pass
    for device in devices:
        try:
            get_backend(device)
        except (CudaUnavailableError, ValueError) as error:
            print(f"gpugrad bench: error: {error}", file=sys.stderr)
            return 2
    models = [m.strip() for m in args.model.split(",")] if args.model else ["lecture", "mlp"]
    for model in models:
        if model not in MODELS:
            print(f"gpugrad bench: error: unknown model {model!r} (choose from {', '.join(MODELS)})", file=sys.stderr)
            return 2
    try:
        import torch
    except ImportError:
        torch = None
    dtype = np.dtype(args.dtype)
    rounds = args.rounds or (3 if args.quick else 7)
    if args.precision == "tf32":  # the process's GEMM setting, for gpugrad and PyTorch alike
        set_matmul_precision("high")
        if torch is not None:
            torch.backends.cuda.matmul.allow_tf32 = True
    results = []
    print_header()
    for model in models:
        sizes, batch, biases, loss_kind = MODELS[model]
        if args.quick and model != "lecture":
            batch = min(batch, 64)
        lr = 1e-4 if loss_kind == "sse" else 0.05
        for device in devices:
            if model == "large" and device == "cpu":
                print("(skipping the large model on the CPU: it is a GPU benchmark)")
                continue
            common = (sizes, batch, biases, loss_kind, args.activation, dtype, device, lr, args.precision)
            with shared_arrays():  # the CPU candidates on the same memory (shared_arrays says why)
                candidates = {"gpugrad": gpugrad_setup(*common)}
                if args.compile:
                    candidates["compiled"] = compiled_setup(*common)
                if model == "lecture":
                    candidates["written"] = written_setup(sizes, batch, biases, loss_kind, args.activation, dtype, device, lr)
                if device == "cpu":
                    candidates["numpy"] = numpy_setup(sizes, batch, biases, loss_kind, args.activation, dtype, lr)
                if torch is not None and (device == "cpu" or torch.cuda.is_available()):
                    candidates["torch"] = torch_setup(*common[:6], "cpu" if device == "cpu" else "cuda", lr, args.precision)
            flops = step_flops(sizes, batch)
            per_step = device == "cpu"
            times, means = measure(candidates, rounds, 0.02 if args.quick else 0.15, warmup=2 if args.quick else 5,
                                   pause=0.02 if args.quick else 0.25, per_step=per_step)
            ceiling = matmul_ceiling_gflops(device, dtype)
            medians = {name: statistics.median(t) for name, t in times.items()}

            def paired(name, reference, figures=times):
                # NOTE: the median over rounds of the ratio within each round: candidates of one round
                # run seconds apart, so a machine that slows down for a minute moves both alike.
                if reference not in figures:
                    return None
                return statistics.median(a / b for a, b in zip(figures[name], figures[reference]))
            for name, median in medians.items():
                results.append({
                    "model": model, "sizes": sizes, "batch": batch, "device": device, "impl": name,
                    "activation": args.activation, "dtype": dtype.name, "median_ms": median * 1e3,
                    "samples_per_s": batch / median, "gflops": flops / median / 1e9,
                    "pct_of_matmul_ceiling": 100 * flops / median / 1e9 / ceiling,
                    "ratio_to_numpy": paired(name, "numpy"), "ratio_to_torch": paired(name, "torch"),
                    "rounds_ms": [t * 1e3 for t in times[name]], "matmul_ceiling_gflops": ceiling,
                    "statistic": "median step of each round" if per_step else "mean step of each round",
                    "round_means_ms": [t * 1e3 for t in means[name]],
                    "ratio_to_numpy_of_round_means": paired(name, "numpy", means),
                    "max_rel_loss_diff_vs_numpy": loss_difference(model, args.activation, dtype, name, device,
                                                                  precision=args.precision),
                })
                print_row(results[-1])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "rounds": rounds, "quick": args.quick}, f, indent=2)
    if args.plot:
        plot(results, args.plot)
    return 0
