#!/usr/bin/env python
"""The device check: everything that proves gpugrad on a real NVIDIA GPU, in one command.

    timeout -k 10 540 python bench/device_check.py --out $OUT --budget 330 2>&1 | tee $OUT/console.log

In the order that gets the most truth from a lease cut short: the environment; ``pytest -m gpu`` as two
processes (the compile and train tests apart), each under its own limit; the CPU-GPU loss curve of one seeded run;
the two ceilings (device-to-device copy, SGEMM and TF32 GEMM at 4096^3) and each fused kernel's bandwidth against
the generic CuPy sequence it replaces; MLP training steps (gpugrad eager and compiled, PyTorch eager and captured,
JAX's jit, gpugrad on the CPU); bfloat16 autocast against float32 on the GEMM-bound 4 x 4096 model and the small
MLP under autocast (bfloat16 compiled against PyTorch's captured step, float16 with the scaler), where a runner
that fails loses its row, not the section; the layers added for PyTorch users against PyTorch's; data parallel on
one card (NCCL at world size 1, two MPI ranks sharing it, the duplicate-GPU refusal); torch.compile last. Each
section runs in a process of its own, killed at its limit (a hang or a sticky CUDA error costs that section
alone). Writes results.json and results.md into --out after every section (at most five files there, the pytest
logs included); sections that would start after --budget are skipped, and the last may run GRACE seconds past it.
Needs only what the device machine has (no network).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX shares the GPU with CuPy and PyTorch

import numpy as np  # noqa: E402

import gpugrad  # noqa: E402
import gpugrad.functional as F  # noqa: E402
from gpugrad import nn, optim  # noqa: E402
from gpugrad.backend import get_backend  # noqa: E402

RESULTS: dict = {"sections": {}, "errors": {}, "skipped": {}}
# NOTE: set by main: where results go after every section (a run cut short keeps what it measured)
RUN = {"out": None}


def section(name):
    """A measured section: run in its own process (main's run_section), what it returns or raises kept in RESULTS."""
    def wrap(fn):
        def run(*args, **kwargs):
            started = time.time()
            print(f"\n== {name}", flush=True)
            try:
                RESULTS["sections"][name] = fn(*args, **kwargs)
            except Exception:
                RESULTS["errors"][name] = traceback.format_exc()
                print(RESULTS["errors"][name], flush=True)
            print(f"   ({time.time() - started:.1f} s)", flush=True)
        return run
    return wrap


def save() -> str:
    """Write results.json and results.md into the output folder (after every section); returns the table."""
    table = markdown()
    if RUN["out"] is not None:
        (RUN["out"] / "results.json").write_text(json.dumps(RESULTS, indent=2, default=float))
        (RUN["out"] / "results.md").write_text(table + "\n")
    return table


def gpu_time(fn, warmup=3, repeat=20, inner=10):
    """Median milliseconds per call of ``fn``: CUDA events around ``inner`` calls in a row.

    One call between two events also times the host's work to launch it (Python, CuPy's argument
    checks and allocation: tens of microseconds), during which the GPU idles after the start event:
    15% of a 0.13 ms kernel. Back-to-back calls keep the queue full after the first, as in a
    training step, and the first one's gap is shared by ``inner`` calls.
    """
    import cupy
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        for _ in range(inner):
            fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / inner)
    return statistics.median(times)


@section("environment")
def environment():
    import cupy
    props = cupy.cuda.runtime.getDeviceProperties(0)
    info = {
        "gpu": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
        "multiprocessors": props["multiProcessorCount"],
        "memory_gib": round(props["totalGlobalMem"] / 2 ** 30, 1),
        "driver": cupy.cuda.runtime.driverGetVersion(),
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cupy": cupy.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    try:
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception as error:
        info["nvidia_smi"] = str(error)
    for k, v in info.items():
        print(f"   {k}: {v}")
    return info


# NOTE: the compile and train tests in a process of their own: a capture that hangs or leaves a sticky CUDA error
# there must not cost the rest of the GPU tests
CAPTURE_TESTS = ["tests/test_compile.py", "tests/test_training.py", "tests/test_capture_failures.py"]


def gpu_tests(out: Path, which: str, limit: float):
    """``pytest -m gpu`` over the capture tests ("capture") or all the others ("ops"), under ``limit`` seconds."""
    started = time.time()
    paths = CAPTURE_TESTS if which == "capture" else ["tests", "bench"] + [f"--ignore={p}" for p in CAPTURE_TESTS]
    # -v and unbuffered: a run cut short by the limit still shows each test that ran and how it ended
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-p", "no:cacheprovider", *paths]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=limit,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        output, returncode = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as expired:  # keep what it printed: which tests ran, which failed
        output = "".join(part.decode(errors="replace") if isinstance(part, bytes) else (part or "")
                         for part in (expired.stdout, expired.stderr))
        output += f"\n(timed out after {limit:.0f} s)\n"
        returncode = None
    (out / f"pytest_gpu_{which}.log").write_text(output)
    summary = [line for line in output.splitlines() if line.strip()][-1:] or ["(no output)"]
    failed = [line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))] or \
        [line for line in output.splitlines() if line.endswith("]") and (" FAILED " in line or " ERROR " in line)]
    print("   " + summary[0])
    for line in failed[:30]:
        print("   " + line)
    return {"returncode": returncode, "summary": summary[0], "failed": failed, "seconds": time.time() - started}


@section("ceilings")
def ceilings():
    import cupy
    n = 2 ** 28  # 1 GiB of float32: far beyond L2
    src = cupy.random.random(n, dtype=np.float32)
    dst = cupy.empty_like(src)
    ms = gpu_time(lambda: cupy.copyto(dst, src))
    copy_gbs = 2 * n * 4 / ms / 1e6
    # The same copy as a plain elementwise kernel: what a kernel that reads x and writes y can reach,
    # to tell a gap of our kernels from a gap between kernels and the copy engine's path.
    plain = cupy.ElementwiseKernel("T x", "T y", "y = x", "gpugrad_plain_copy")
    kernel_copy_gbs = 2 * n * 4 / gpu_time(lambda: plain(src, dst)) / 1e6
    size = 4096
    a = cupy.random.random((size, size), dtype=np.float32)
    b = cupy.random.random((size, size), dtype=np.float32)
    flops = 2 * size ** 3
    gemm = get_backend("cuda").matmul  # gpugrad's cublasGemmEx, in the compute type the precision asks for
    sgemm = flops / gpu_time(lambda: gemm(a, b), repeat=10) / 1e9
    gpugrad.set_matmul_precision("high")
    try:
        tf32 = flops / gpu_time(lambda: gemm(a, b), repeat=10) / 1e9
    finally:
        gpugrad.set_matmul_precision("highest")
    result = {"copy_GBps": copy_gbs, "kernel_copy_GBps": kernel_copy_gbs, "sgemm_TFLOPs": sgemm, "tf32_TFLOPs": tf32}
    print("   " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()))
    return result


@section("fused kernels")
def kernels():
    import cupy
    from gpugrad.cuda import kernels as launch
    from gpugrad.ops.activation import ACTIVATIONS
    from gpugrad.ops.loss import softmax_xent
    get_backend("cuda")  # the device and its allocator
    xp = cupy
    n = 2 ** 26
    rows, cols = n // 4096, 4096
    rng = cupy.random.RandomState(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y_sig = launch.activation_forward("sigmoid", x, 0.0)
    y_relu = launch.activation_forward("relu", x, 0.0)
    g = rng.standard_normal(n, dtype=np.float32)
    bias = rng.standard_normal(cols, dtype=np.float32)
    z = x.reshape(rows, cols).copy()
    logits = rng.standard_normal((n // 1024, 1024), dtype=np.float32)
    labels = rng.randint(0, 1024, n // 1024).astype(np.int64)
    b4 = n * 4

    def formula(name, direction):
        entry = ACTIVATIONS[name]
        return entry.forward if direction == "fwd" else entry.backward

    # name, fused call, the op's xp formula alone (what runs without the kernel), bytes the kernel must move
    cases = []
    for name, y_saved in (("sigmoid", y_sig), ("relu", y_relu), ("tanh", y_sig), ("leaky_relu", None),
                          ("elu", None)):
        param = ACTIVATIONS[name].default
        cases.append((f"{name}_fwd", lambda name=name, p=param: launch.activation_forward(name, x, p),
                      lambda name=name, p=param: formula(name, "fwd")(xp, x, p), 2 * b4))
        if y_saved is not None:
            cases.append((f"{name}_bwd", lambda name=name, y=y_saved: launch.activation_backward(name, y, g, 0.0),
                          lambda name=name, y=y_saved: formula(name, "bwd")(xp, y, g, 0.0), 3 * b4))
    cases.append(("softmax_xent", lambda: launch.softmax_xent(logits, labels),
                  lambda: softmax_xent(xp, logits, labels), 2 * b4))
    for act in ("relu", "sigmoid"):
        y2 = launch.activation_forward(act, z, 0.0)
        g2 = g.reshape(rows, cols)

        def generic_fwd(act=act):
            return formula(act, "fwd")(xp, xp.add(z, bias, out=z), 0.0, out=z)

        def generic_bwd(act=act, y2=y2, g2=g2):
            pre = formula(act, "bwd")(xp, y2, g2, 0.0)
            return pre, pre.sum(axis=0)
        cases.append((f"bias_{act}_fwd", lambda act=act: launch.bias_act_forward(z, bias, act, 0.0), generic_fwd, 2 * b4))
        cases.append((f"bias_{act}_bwd", lambda act=act, y2=y2, g2=g2: launch.bias_act_backward(y2, g2, act, 0.0),
                      generic_bwd, 3 * b4))
    copy = RESULTS["sections"].get("ceilings", {}).get("copy_GBps")
    table = {}
    for name, fused, generic, nbytes in cases:
        fused_ms, generic_ms = gpu_time(fused), gpu_time(generic)
        single_ms = gpu_time(fused, inner=1)  # the first session's way: one launch between the events
        gbs = nbytes / fused_ms / 1e6
        table[name] = {"fused_ms": fused_ms, "generic_ms": generic_ms, "GBps": gbs,
                       "pct_of_copy": 100 * gbs / copy if copy else None, "fused_over_generic": fused_ms / generic_ms,
                       "fused_ms_one_launch_between_events": single_ms}
        print(f"   {name:16s} fused {fused_ms:7.3f} ms  generic {generic_ms:7.3f} ms  {gbs:7.0f} GB/s"
              + (f"  {100 * gbs / copy:5.1f}% of copy" if copy else "") + f"  (one launch timed alone: {single_ms:.3f} ms)")
    for act in ("relu", "sigmoid"):
        f = table[f"bias_{act}_fwd"]["fused_ms"] + table[f"bias_{act}_bwd"]["fused_ms"]
        u = table[f"bias_{act}_fwd"]["generic_ms"] + table[f"bias_{act}_bwd"]["generic_ms"]
        table[f"bias_{act}_fwd+bwd"] = {"fused_ms": f, "generic_ms": u, "fused_over_generic": f / u}
        print(f"   bias+{act} fwd+bwd fused/generic = {f / u:.2f}")
    return table


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


def _wall_per_step(step, sync, steps):
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - start) / steps * 1e3


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
            tape_steps = [s for c in compiled._captures.values() for s in c.tape.steps]
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


def _interleaved_medians(runners, rounds, steps, label):
    """{name: median ms per step}: each runner (make, sync) made and warmed up alone (one that fails loses its row,
    with its error recorded under ``label``, not the section), then all timed in interleaved rounds."""
    ready = {}
    for name, (make, sync) in runners.items():
        try:
            step = make()
            for _ in range(3):
                step()
            sync()
            ready[name] = (step, sync)
        except Exception as error:
            RESULTS["errors"][f"{label}: {name}"] = f"{type(error).__name__}: {error}"
            print(f"   {name}: ERROR {type(error).__name__}: {error}", flush=True)
    times = {name: [] for name in ready}
    for _ in range(rounds):
        for name, (step, sync) in ready.items():
            times[name].append(_wall_per_step(step, sync, steps))
    return {name: statistics.median(v) for name, v in times.items()}


def _ratio(medians, a, b):
    return medians[a] / medians[b] if a in medians and b in medians else None


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


DP_RANK = """
import sys, json, numpy as np, gpugrad, gpugrad.nn as nn, gpugrad.optim as optim, gpugrad.functional as F
from gpugrad import distributed
comm = distributed.init(backend="mpi", device="cuda")  # two ranks share the one GPU: MPI, staged through the host
gpugrad.manual_seed(comm.rank)
model = nn.MLP([64, 128, 10], activation="relu", device="cuda")
ddp = nn.parallel.DistributedDataParallel(model)
opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
rng = np.random.default_rng(0)
X, Y = rng.standard_normal((10, 2 * 16, 64)).astype(np.float32), rng.integers(0, 10, (10, 2 * 16))
for s in range(10):
    part = slice(comm.rank * 16, comm.rank * 16 + 16)
    opt.zero_grad()
    F.cross_entropy(ddp(gpugrad.tensor(X[s, part], device="cuda")), gpugrad.tensor(Y[s, part], device="cuda")).backward()
    opt.step()
np.save(f"{sys.argv[1]}/rank{comm.rank}.npy", np.concatenate([p.numpy().ravel() for p in model.parameters()]))
"""


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


@section("data parallel")
def data_parallel(out: Path):
    """One card: NCCL at world size 1 (DDP equals plain training; all-reduce bus bandwidth of 100 MB), two
    ranks sharing the card through MPI with host staging (equal to one process on both halves), and NCCL's
    duplicate-GPU refusal as gpugrad's error."""
    import os
    import tempfile

    import cupy
    from gpugrad import distributed
    from gpugrad.distributed.nccl import NCCLCommunicator
    result = {}
    comm = NCCLCommunicator(0, 1, 0)
    runs = []
    for wrap in (False, True):
        gpugrad.manual_seed(0)
        model = nn.MLP([256, 512, 10], activation="relu", device="cuda")
        net = nn.parallel.DistributedDataParallel(model, comm=comm) if wrap else model
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x = gpugrad.randn(64, 256, device="cuda")
        y = gpugrad.tensor(np.arange(64) % 10, device="cuda")
        for _ in range(10):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        runs.append(np.concatenate([p.numpy().ravel() for p in model.parameters()]))
    result["nccl_world_1_equals_plain"] = bool(np.array_equal(runs[0], runs[1]))
    buffer = cupy.ones(25 * 2 ** 20, dtype=np.float32)  # 100 MB
    ms = gpu_time(lambda: comm.all_reduce(buffer), repeat=10, inner=5)
    result["allreduce_100MB_ms"] = ms
    result["allreduce_100MB_bus_GBps"] = buffer.nbytes / ms / 1e6  # world 1: the ring factor 2(N-1)/N is 0; algorithm bandwidth
    try:
        NCCLCommunicator(1, 2, cupy.cuda.runtime.getDeviceCount())
        result["duplicate_gpu_refused"] = False
    except distributed.DistributedError as error:
        result["duplicate_gpu_refused"] = str(error)
    folder = Path(tempfile.mkdtemp(dir=out))
    (folder / "rank.py").write_text(DP_RANK)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    done = subprocess.run([mpiexec if os.path.exists(mpiexec) else "mpiexec", "-n", "2", sys.executable,
                           str(folder / "rank.py"), str(folder)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    result["mpi_two_ranks_on_one_gpu"] = done.returncode == 0 and bool(
        np.array_equal(np.load(folder / "rank0.npy"), np.load(folder / "rank1.npy")))
    if done.returncode:
        result["mpi_two_ranks_error"] = done.stderr[-1500:]
    print(f"   {result}")
    return result


@section("layers and ops against PyTorch")
def layers_against_torch(rows=8192, cols=1024):
    """The layers added for PyTorch users, on the GPU (fused kernels for layer norm and dropout, the xp
    formula for the rest): forward + backward time against
    PyTorch eager (CUDA events around 10 calls) and the largest difference from PyTorch's values."""
    import cupy
    import torch
    x_np = np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32)
    w_np = np.random.default_rng(1).standard_normal(cols).astype(np.float32)
    cases = {
        "gelu": (lambda x: F.gelu(x), lambda t: torch.nn.functional.gelu(t)),
        "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
        "silu": (F.silu, torch.nn.functional.silu),
        "softplus": (F.softplus, torch.nn.functional.softplus),
        "layer_norm": (lambda x: F.layer_norm(x, cols, w, b), lambda t: torch.nn.functional.layer_norm(t, (cols,), tw, tb)),
        "batch_norm": (lambda x: F.batch_norm(x, None, None, w, b, training=True),
                       lambda t: torch.nn.functional.batch_norm(t, None, None, tw, tb, training=True)),
        "softmax": (lambda x: F.softmax(x, dim=1), lambda t: torch.softmax(t, dim=1)),
        "cumsum": (lambda x: x.cumsum(1), lambda t: t.cumsum(1)),
        "norm": (lambda x: x.norm(dim=1), lambda t: t.norm(dim=1)),
        "dropout (masks differ)": (lambda x: F.dropout(x, 0.1), lambda t: torch.nn.functional.dropout(t, 0.1)),
        # one fused pass against the activation and the dropout apart (gpugrad) and PyTorch's two ops
        "relu+dropout fused (masks differ)": (lambda x: F.dropout(x, 0.1, activation="relu"),
                                              lambda t: torch.nn.functional.dropout(torch.relu(t), 0.1)),
        "relu, dropout apart (masks differ)": (lambda x: F.dropout(F.relu(x), 0.1),
                                               lambda t: torch.nn.functional.dropout(torch.relu(t), 0.1)),
    }
    w, b = (gpugrad.tensor(a, device="cuda", requires_grad=True) for a in (w_np, w_np * 0.5))
    tw, tb = (torch.tensor(a, device="cuda", requires_grad=True) for a in (w_np, w_np * 0.5))
    table = {}
    for name, (ours, theirs) in cases.items():
        x = gpugrad.tensor(x_np, device="cuda", requires_grad=True)
        t = torch.tensor(x_np, device="cuda", requires_grad=True)

        def ours_step():
            x.grad = None
            ours(x).sum().backward()

        def theirs_step():
            t.grad = None
            theirs(t).sum().backward()
        ours_ms = gpu_time(ours_step)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(3):
            theirs_step()
        times = []
        for _ in range(20):
            start.record()
            for _ in range(10):
                theirs_step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 10)
        torch_ms = statistics.median(times)
        cupy.cuda.Device().synchronize()
        value_diff = float("nan") if "dropout" in name else \
            float(np.abs(ours(x).numpy() - theirs(t).detach().cpu().numpy()).max())
        table[name] = {"gpugrad_ms": ours_ms, "torch_ms": torch_ms, "gpugrad_over_torch": ours_ms / torch_ms,
                       "max_abs_diff": value_diff}
        print(f"   {name:12s} gpugrad {ours_ms:7.3f} ms  torch {torch_ms:7.3f} ms  ({ours_ms / torch_ms:5.2f}x)  "
              f"max |diff| {value_diff:.2e}")
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


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def markdown() -> str:
    s = RESULTS["sections"]
    env = s.get("environment", {})
    lines = [f"## Device check: {env.get('gpu', '?')} ({env.get('date', '?')})", "",
             f"driver {env.get('driver')}, CUDA runtime {env.get('cuda_runtime')}, cupy {env.get('cupy')}, "
             f"numpy {env.get('numpy')}, torch {env.get('torch')}, Python {env.get('python')}", ""]
    for name in ("pytest -m gpu", "pytest -m gpu (capture and train)"):
        if name in s:
            lines += [f"- `{name}`: {s[name]['summary']}", ""]
    c = s.get("ceilings")
    if c:
        lines += [f"- Ceilings: copy {c['copy_GBps']:.0f} GB/s (read + write; {c.get('kernel_copy_GBps', 0):.0f} GB/s "
                  f"as a plain elementwise kernel), SGEMM {c['sgemm_TFLOPs']:.1f} TFLOP/s, "
                  f"TF32 GEMM {c['tf32_TFLOPs']:.1f} TFLOP/s (4096^3)", ""]
    k = s.get("fused kernels")
    if k:
        lines += ["| kernel (2^26 float32) | fused ms | generic cupy ms | fused / generic | GB/s | % of copy |",
                  "|---|---|---|---|---|---|"]
        for name, r in k.items():
            gbs = f"{r['GBps']:.0f}" if "GBps" in r else ""
            pct = f"{r['pct_of_copy']:.1f}" if r.get("pct_of_copy") else ""
            lines.append(f"| {name} | {r['fused_ms']:.3f} | {r['generic_ms']:.3f} | {r['fused_over_generic']:.2f} | {gbs} | {pct} |")
        lines.append("")
    m = s.get("MLP training steps")
    if m:
        lines += ["| MLP step, float32, SGD | runner | ms per step | / torch eager |", "|---|---|---|---|"]
        for label, r in m.items():
            for name, ms in r["ms_per_step"].items():
                lines.append(f"| {label} | {name} | {ms:.3f} | {r.get('over_torch_eager', {}).get(name, float('nan')):.2f} |")
            if "step_over_gemm_sum" in r:
                lines.append(f"| {label} | gpugrad cuda step / its GEMMs alone | | {r['step_over_gemm_sum']:.2f} |")
        lines.append("")
    mp = s.get("mixed precision")
    if mp:
        lines += ["| 4 x 4096 @4096, SGD | ms per step | TFLOP/s | / torch bf16 autocast |", "|---|---|---|---|"]
        lines += [f"| {name} | {r['ms']:.3f} | {r['TFLOPs']:.1f} | {_f(r['over_torch_bf16'])} |" for name, r in mp.items()
                  if name != "bars"]
        lines.append("")
    small = s.get("small MLP under autocast")
    if small:
        lines += ["| 784-1024-1024-10 @512 under autocast | ms per step |", "|---|---|"]
        lines += [f"| {name} | {r['ms']:.3f} |" for name, r in small.items() if isinstance(r, dict)]
        lines += [f"| {name} | ratio {_f(r)} |" for name, r in small.items() if not isinstance(r, dict)]
        lines.append("")
    dp = s.get("data parallel")
    if dp:
        lines += [f"- Data parallel on one card: NCCL world 1 equals plain training: {dp['nccl_world_1_equals_plain']}; "
                  f"100 MB all-reduce {dp['allreduce_100MB_ms']:.3f} ms ({dp['allreduce_100MB_bus_GBps']:.0f} GB/s); "
                  f"two MPI ranks sharing the card agree: {dp['mpi_two_ranks_on_one_gpu']}; duplicate GPU refused: "
                  f"{bool(dp['duplicate_gpu_refused'])}", ""]
    layers = s.get("layers and ops against PyTorch")
    if layers:
        lines += ["| layer / op, 8192 x 1024 float32, forward + backward | gpugrad ms | torch ms | gpugrad / torch | "
                  "max abs diff |", "|---|---|---|---|---|"]
        for name, r in layers.items():
            lines.append(f"| {name} | {r['gpugrad_ms']:.3f} | {r['torch_ms']:.3f} | {r['gpugrad_over_torch']:.2f} | "
                         f"{r['max_abs_diff']:.1e} |")
        lines.append("")
    tc = s.get("torch.compile")
    if tc:
        lines += ["| 784-1024-1024-10 @512, float32 | ms per step |", "|---|---|"]
        lines += [f"| {name} | {r['ms']:.3f} |" if isinstance(r, dict) else f"| {name} | ratio {_f(r)} |"
                  for name, r in tc.items()]
        lines.append("")
    lc = s.get("CPU-GPU loss curve")
    if lc:
        lines += [f"- CPU-GPU loss curve: {lc['steps']} seeded SGD steps, max relative difference {lc['max_rel_diff']:.2e}", ""]
    for name, error in RESULTS["errors"].items():
        lines += [f"- ERROR in {name}: `{error.strip().splitlines()[-1]}`"]
    lines += [f"- SKIPPED {name}: {why}" for name, why in RESULTS["skipped"].items()]
    return "\n".join(lines)


# The sections in the order that gets the most truth from a lease cut short, each with the seconds it may take: its
# own process (a hang, a crash or a sticky CUDA error costs that section alone), killed at its limit.
PLAN = [("environment", 60), ("pytest -m gpu", 200), ("pytest -m gpu (capture and train)", 150),
        ("CPU-GPU loss curve", 60), ("ceilings", 60), ("fused kernels", 90), ("MLP training steps", 120),
        ("mixed precision", 90), ("small MLP under autocast", 90), ("layers and ops against PyTorch", 90),
        ("data parallel", 90), ("torch.compile", 180)]
GRACE = 150  # seconds a section started before the --budget's end may run past it


def _functions():
    return {"environment": environment, "CPU-GPU loss curve": loss_curve, "ceilings": ceilings,
            "fused kernels": kernels, "MLP training steps": mlp_steps, "mixed precision": mixed_precision,
            "small MLP under autocast": small_mlp_autocast, "layers and ops against PyTorch": layers_against_torch,
            "data parallel": data_parallel, "torch.compile": torch_compile}


def run_section(name, out: Path, limit: float):
    """One section: the GPU tests as pytest processes, every other one as this script with --section, in a process of
    its own under ``limit`` seconds; what it measured (or its error) goes into RESULTS."""
    started = time.time()
    if name.startswith("pytest"):
        print(f"\n== {name}", flush=True)
        RESULTS["sections"][name] = gpu_tests(out, "capture" if "capture" in name else "ops", limit)
        return
    with tempfile.TemporaryDirectory() as scratch:  # the section's results and files, never in --out's few files
        try:
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--section", name, "--out", scratch],
                           timeout=limit, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            piece = Path(scratch) / "section.json"
            if not piece.exists():
                raise RuntimeError("the section's process ended without results (a crash)")
            found = json.loads(piece.read_text())
            for kind in ("sections", "errors"):
                RESULTS[kind].update(found[kind])
        except subprocess.TimeoutExpired:
            RESULTS["errors"][name] = f"TimeoutError: the section's process was killed after {limit:.0f} s"
        except Exception as error:
            RESULTS["errors"][name] = f"{type(error).__name__}: {error}"
    if name in RESULTS["errors"]:
        print("   " + RESULTS["errors"][name].strip().splitlines()[-1], flush=True)
    print(f"   ({time.time() - started:.1f} s in all)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("device-check"))
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds; sections that would start later are skipped (default 420)")
    parser.add_argument("--section", help=argparse.SUPPRESS)  # one section, in the process run_section starts
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.section:
        function = _functions()[args.section]
        function(args.out) if args.section == "data parallel" else function()
        (args.out / "section.json").write_text(json.dumps(RESULTS, default=float))
        return 0
    RUN["out"], deadline = args.out, time.time() + args.budget
    for name, limit in PLAN:
        if name.startswith("pytest") and args.skip_tests:
            continue
        now = time.time()
        if now > deadline:
            RESULTS["skipped"][name] = "the --budget was spent before this section"
            print(f"\n== {name}\n   skipped: " + RESULTS["skipped"][name], flush=True)
        else:
            run_section(name, args.out, min(limit, deadline + GRACE - now))
        save()
    print("\n" + save())
    return 1 if RESULTS["errors"] or RESULTS["skipped"] else 0


if __name__ == "__main__":
    sys.exit(main())
