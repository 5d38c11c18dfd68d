"""Training steps: gpugrad eager and compiled against PyTorch eager, captured, autocast and torch.compile, and JAX;
the CPU-GPU loss curve of one seeded run."""
from __future__ import annotations

import statistics

import numpy as np

import gpugrad
import gpugrad.functional as F
from gpugrad import nn, optim

from .common import RESULTS, _interleaved_medians, _ratio, _wall_per_step, gpu_time, section


def _gpugrad_step(model, opt, x, y, low=None, scaler=None):
    with gpugrad.autocast(low or "bfloat16", enabled=low is not None):
        loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    if scaler is None:
        loss.backward()
        opt.step()
    else:  # float16's loss scaling: no host read in the step (the skip is decided on the device)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return loss


def _torch_setup(sizes, batch, device, seed=0, low=None, scaler=False, graph=False):
    import torch
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, sizes[0], device=device)
    y = torch.randint(0, sizes[-1], (batch,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()

    grad_scaler = torch.amp.GradScaler("cuda") if scaler else None

    def step():
        with torch.autocast("cuda", dtype=getattr(torch, low or "bfloat16"), enabled=low is not None,
                            cache_enabled=not graph):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        if grad_scaler is None:
            loss.backward()
            opt.step()
        else:  # PyTorch's scaler reads its inf flag on the host in step()
            grad_scaler.scale(loss).backward()
            grad_scaler.step(opt)
            grad_scaler.update()
        return loss
    return step


def _gpugrad_setup(sizes, batch, device, compiled=False, low=None, scaler=False):
    gpugrad.manual_seed(0)
    grad_scaler = gpugrad.GradScaler() if scaler else None
    model = nn.MLP(sizes, activation="relu", device=device)
    opt = optim.SGD(model.parameters(), lr=0.01)
    x = gpugrad.randn(batch, sizes[0], device=device)
    y = gpugrad.tensor(np.random.default_rng(0).integers(0, sizes[-1], batch), device=device)
    if compiled:  # the step as a user writes it, given to gpugrad.compile (CUDA graphs on a GPU)
        step = gpugrad.compile(_gpugrad_step)
        run = lambda: step(model, opt, x, y, low, grad_scaler)  # noqa: E731 -- all but x, y: constants of the capture
        run.compiled = step
        return run
    return lambda: _gpugrad_step(model, opt, x, y, low, grad_scaler)


def _torch_graph_setup(sizes, batch, low=None):
    """PyTorch's own captured step: the whole step in torch.cuda.graph (its documented whole-network capture);
    with ``low``, under autocast without its cast cache (what PyTorch asks of autocast in a graph)."""
    import torch
    step = _torch_setup(sizes, batch, "cuda", low=low, graph=True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def _torch_compile_setup(sizes, batch):
    import torch
    return torch.compile(_torch_setup(sizes, batch, "cuda"), mode="reduce-overhead")


def _jax_setup(sizes, batch):
    """The same MLP step in JAX, jit-compiled: the compiled peer."""
    import jax
    import jax.numpy as jnp
    keys = jax.random.split(jax.random.PRNGKey(0), len(sizes))
    params = [(jax.random.normal(k, (b, a)) * (1 / a) ** 0.5, jnp.zeros(b)) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]
    x = jax.random.normal(keys[-1], (batch, sizes[0]))
    y = jnp.asarray(np.random.default_rng(0).integers(0, sizes[-1], batch))

    def loss_fn(params):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w.T + b
            h = jax.nn.relu(h) if i < len(params) - 1 else h
        return -jnp.mean(jax.nn.log_softmax(h)[jnp.arange(batch), y])

    @jax.jit
    def step(params):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads), loss
    state = [params]

    def run():
        state[0], loss = step(state[0])
        return loss
    return run, lambda: jax.block_until_ready(state[0])


@section("MLP training steps")
def mlp_steps(rounds=5):
    import cupy
    cuda_sync = lambda: cupy.cuda.Device().synchronize()  # noqa: E731
    try:
        import torch
        torch_sync = torch.cuda.synchronize
    except ImportError:
        torch = None
    results = {}
    for label, sizes, batch, steps in (("784-1024-1024-10 @512", [784, 1024, 1024, 10], 512, 50),
                                       ("4x4096 @4096", [4096] * 5, 4096, 5)):
        runners = {"gpugrad cuda": (_gpugrad_setup(sizes, batch, "cuda"), cuda_sync),
                   "gpugrad cuda compiled": (_gpugrad_setup(sizes, batch, "cuda", compiled=True), cuda_sync)}
        if torch is not None:
            runners["torch cuda"] = (_torch_setup(sizes, batch, "cuda"), torch_sync)
            runners["torch cuda graph"] = (_torch_graph_setup(sizes, batch), torch_sync)
        try:
            runners["jax jit"] = _jax_setup(sizes, batch)
        except ImportError:
            pass
        if batch <= 512:
            runners["gpugrad cpu"] = (_gpugrad_setup(sizes, batch, "cpu"), lambda: None)
        for name, (step, sync) in list(runners.items()):  # warm-up: kernel compiles, captures, cuBLAS handles, pools
            try:
                for _ in range(3):
                    step()
                sync()
            except Exception as error:  # a peer that does not run here (no compiler for torch.compile, ...)
                RESULTS["errors"][f"{label}: {name}"] = f"{type(error).__name__}: {error}"
                runners.pop(name)
        times = {name: [] for name in runners}
        for _ in range(rounds):  # interleaved rounds, medians
            for name, (step, sync) in runners.items():
                n = steps if "cpu" not in name else max(3, steps // 10)
                times[name].append(_wall_per_step(step, sync, n))
        medians = {name: statistics.median(v) for name, v in times.items()}
        entry = {"ms_per_step": medians, "all_rounds_ms": times}
        results[label] = entry  # kept even if gpugrad's own eager step failed its warm-up (its error is recorded)
        print(f"   {label}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in medians.items()))
        if "gpugrad cuda" not in medians:
            continue
        if "torch cuda" in medians:
            entry["gpugrad_over_torch"] = medians["gpugrad cuda"] / medians["torch cuda"]
            entry["over_torch_eager"] = {name: m / medians["torch cuda"] for name, m in medians.items()}
        if len(set(sizes)) == 1:
            entry["gemm_sum_ms"] = _gemm_sum_ms(sizes, batch)
            entry["step_over_gemm_sum"] = medians["gpugrad cuda"] / entry["gemm_sum_ms"]
        compiled = getattr(runners.get("gpugrad cuda compiled", (None,))[0], "compiled", None)
        if compiled is not None:  # what a replay launches: one graph and no host call when the optimizer joined it
            tape_steps = [s for e in compiled._captures.values() for c in e for s in c.tape.steps]
            entry["replay"] = {"graphs": sum(not callable(s) for s in tape_steps),
                               "host_calls": sum(callable(s) for s in tape_steps)}
        flops = 6 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        entry["gpugrad_cuda_TFLOPs"] = flops / medians["gpugrad cuda"] / 1e9
        print(f"   gpugrad/torch {entry.get('gpugrad_over_torch', float('nan')):.2f}")
    return results


def _gemm_sum_ms(sizes, batch, dtype=np.float32):
    """The GEMMs one step performs (forward, grad of weight, grad of input except the first layer), each timed
    alone, through gpugrad's GEMM (cuBLAS; bfloat16 operands with float32 accumulation for bfloat16)."""
    import cupy
    matmul = gpugrad.get_backend("cuda").matmul
    total = 0.0
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        x, w, g = (cupy.random.random(shape, dtype=np.float32).astype(dtype)
                   for shape in ((batch, fan_in), (fan_out, fan_in), (batch, fan_out)))
        total += gpu_time(lambda: matmul(x, w.T), repeat=10)
        total += gpu_time(lambda: matmul(g.T, x), repeat=10)
        if i > 0:
            total += gpu_time(lambda: matmul(g, w), repeat=10)
    return total


@section("mixed precision")
def mixed_precision(rounds=5, steps=5):
    """4 x 4096 at batch 4096 (GEMM-bound): bfloat16 autocast against float32, gpugrad and PyTorch."""
    import cupy
    import torch
    sizes, batch = [4096] * 5, 4096
    cuda_sync = lambda: cupy.cuda.Device().synchronize()  # noqa: E731
    runners = {"gpugrad fp32": (lambda: _gpugrad_setup(sizes, batch, "cuda"), cuda_sync),
               "gpugrad bf16": (lambda: _gpugrad_setup(sizes, batch, "cuda", low="bfloat16"), cuda_sync),
               "gpugrad bf16 compiled": (lambda: _gpugrad_setup(sizes, batch, "cuda", compiled=True, low="bfloat16"),
                                         cuda_sync),
               "torch fp32": (lambda: _torch_setup(sizes, batch, "cuda"), torch.cuda.synchronize),
               "torch bf16 autocast": (lambda: _torch_setup(sizes, batch, "cuda", low="bfloat16"),
                                       torch.cuda.synchronize)}
    medians = _interleaved_medians(runners, rounds, steps, "mixed precision")
    flops = 6 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    table = {name: {"ms": ms, "TFLOPs": flops / ms / 1e9, "over_torch_bf16": _ratio(medians, name, "torch bf16 autocast")}
             for name, ms in medians.items()}
    for name, r in table.items():
        print(f"   {name}: {r['ms']:.3f} ms, {r['TFLOPs']:.1f} TFLOP/s, / torch bf16 {r['over_torch_bf16']}")
    # the bars: <= 1.0x PyTorch's autocast, >= 5x faster than float32, within 1.3x of the bf16 GEMMs alone
    gemms = _gemm_sum_ms(sizes, batch, gpugrad.bfloat16)
    table["bars"] = {"bf16_over_torch_bf16": _ratio(medians, "gpugrad bf16", "torch bf16 autocast"),
                     "fp32_over_bf16": _ratio(medians, "gpugrad fp32", "gpugrad bf16"),
                     "bf16_gemm_sum_ms": gemms,
                     "bf16_over_gemm_sum": medians["gpugrad bf16"] / gemms if "gpugrad bf16" in medians else None}
    print("   bars: " + ", ".join(f"{k} {v}" for k, v in table["bars"].items()))
    return table


@section("small MLP under autocast")
def small_mlp_autocast(rounds=5, steps=20):
    """MLP 784-1024-1024-10 at batch 512 under autocast. bfloat16: gpugrad compiled against PyTorch's captured
    autocast step (torch.cuda.graph), the issue's bar <= 1.0. float16 with a GradScaler: gpugrad's scaler
    decides the skip on the device (no host read per step), PyTorch's reads its flag on the host every step."""
    import cupy
    import torch
    sizes, batch = [784, 1024, 1024, 10], 512
    cuda_sync = lambda: cupy.cuda.Device().synchronize()  # noqa: E731
    sync = torch.cuda.synchronize
    runners = {"gpugrad bf16": (lambda: _gpugrad_setup(sizes, batch, "cuda", low="bfloat16"), cuda_sync),
               "gpugrad bf16 compiled": (lambda: _gpugrad_setup(sizes, batch, "cuda", compiled=True, low="bfloat16"),
                                         cuda_sync),
               "torch bf16 autocast": (lambda: _torch_setup(sizes, batch, "cuda", low="bfloat16"), sync),
               "torch bf16 autocast cuda graph": (lambda: _torch_graph_setup(sizes, batch, low="bfloat16"), sync),
               "gpugrad fp16+scaler": (lambda: _gpugrad_setup(sizes, batch, "cuda", low="float16", scaler=True),
                                       cuda_sync),
               "gpugrad fp16+scaler compiled": (lambda: _gpugrad_setup(sizes, batch, "cuda", compiled=True,
                                                                       low="float16", scaler=True), cuda_sync),
               "torch fp16 autocast+scaler": (lambda: _torch_setup(sizes, batch, "cuda", low="float16", scaler=True),
                                              sync)}
    medians = _interleaved_medians(runners, rounds, steps, "small MLP under autocast")
    table = {name: {"ms": ms} for name, ms in medians.items()}
    table["bf16 compiled / torch bf16 cuda graph"] = _ratio(medians, "gpugrad bf16 compiled",
                                                            "torch bf16 autocast cuda graph")
    table["fp16+scaler / torch fp16+scaler"] = _ratio(medians, "gpugrad fp16+scaler", "torch fp16 autocast+scaler")
    for name, r in table.items():
        print(f"   {name}: " + (f"{r['ms']:.3f} ms" if isinstance(r, dict) else f"{r}"))
    return table


@section("torch.compile")
def torch_compile(rounds=5, steps=50):
    """The small MLP: gpugrad compiled against torch.compile(mode="reduce-overhead"), last (it compiles for minutes
    where it works at all, and a hang or a sticky error there must not cost the other sections)."""
    import cupy
    import torch
    sizes, batch = [784, 1024, 1024, 10], 512
    runners = {"gpugrad cuda compiled": (lambda: _gpugrad_setup(sizes, batch, "cuda", compiled=True),
                                         lambda: cupy.cuda.Device().synchronize()),
               "torch.compile reduce-overhead": (lambda: _torch_compile_setup(sizes, batch), torch.cuda.synchronize)}
    medians = _interleaved_medians(runners, rounds, steps, "torch.compile")
    table = {name: {"ms": ms} for name, ms in medians.items()}
    table["gpugrad compiled / torch.compile"] = _ratio(medians, "gpugrad cuda compiled", "torch.compile reduce-overhead")
    print("   " + ", ".join(f"{k}: {v}" for k, v in table.items()))
    return table


@section("CPU-GPU loss curve")
def loss_curve(steps=100):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 64)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    curves = {}
    gpugrad.manual_seed(0)
    reference = nn.MLP([64, 128, 128, 10], activation="relu")
    for device in ("cpu", "cuda"):
        model = nn.MLP([64, 128, 128, 10], activation="relu").to(device)
        model.load_state_dict(reference.state_dict())
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x, labels = gpugrad.tensor(X, device=device), gpugrad.tensor(y, device=device)
        curves[device] = [_gpugrad_step(model, opt, x, labels).item() for _ in range(steps)]
    cpu, gpu = np.array(curves["cpu"]), np.array(curves["cuda"])
    rel = float(np.max(np.abs(cpu - gpu) / np.abs(cpu)))
    print(f"   {steps} SGD steps: loss {cpu[0]:.4f} -> {cpu[-1]:.4f} (cpu), {gpu[-1]:.4f} (cuda); "
          f"max relative difference {rel:.2e}")
    return {"steps": steps, "max_rel_diff": rel, "cpu_first_last": [cpu[0], cpu[-1]], "cuda_first_last": [gpu[0], gpu[-1]]}
