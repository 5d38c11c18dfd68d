#!/usr/bin/env python
"""Where a training step's host time goes: cProfile of MLP steps plus the cost of single calls.

    python bench/profile_step.py [--device cuda] [--steps 300] [--sizes 784,1024,1024,10] [--batch 512]

The small MLP step on a GPU is bound by host-side work (Python, CuPy dispatch, launches), not by
the GPU: this shows which calls to cut.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gpugrad  # noqa: E402
import gpugrad.functional as F  # noqa: E402
from gpugrad import nn, optim  # noqa: E402
from gpugrad.ops.activation import apply_backward, apply_forward  # noqa: E402
from gpugrad.ops.matmul import bias_act_backward  # noqa: E402


def per_call_us(fn, n=2000, sync=lambda: None):
    for _ in range(50):
        fn()
    sync()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - start) / n * 1e6


def gpu_only_us(step, backend, steps=20):
    """The GPU's own time per step: the host queues the steps while the GPU spins, then the GPU
    runs them back to back, so the events measure the device work without the host's gaps."""
    import cupy
    spin = cupy.RawKernel(r'''extern "C" __global__ void spin(long long cycles) {
        long long start = clock64(); while (clock64() - start < cycles) { } }''', "spin")
    backend.synchronize()
    spin((1,), (1,), (np.int64(100_000_000),))  # ~50 ms at ~2 GHz
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(steps):
        step()
    stop.record()
    stop.synchronize()
    return cupy.cuda.get_elapsed_time(start, stop) / steps * 1e3


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--sizes", default="784,1024,1024,10")
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    backend = gpugrad.get_backend(args.device)
    gpugrad.manual_seed(0)
    model = nn.MLP(sizes, device=args.device)
    opt = optim.SGD(model.parameters(), lr=0.01)
    x = gpugrad.randn(args.batch, sizes[0], device=args.device)
    y = gpugrad.tensor(np.random.default_rng(0).integers(0, sizes[-1], args.batch), device=args.device)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    print(f"step: {per_call_us(step, 200, backend.synchronize):.1f} us")
    if backend.kind == "cuda":
        print(f"GPU time of one step, launches queued behind a 50 ms spin: {gpu_only_us(step, backend):.1f} us")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.steps):
        step()
    backend.synchronize()
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(30)
    print(out.getvalue())

    xp = backend.xp
    a = xp.ones((args.batch, sizes[1]), dtype=np.float32)
    w = xp.ones((sizes[1], sizes[1]), dtype=np.float32)
    sync = backend.synchronize
    print("single calls (us, host time with the GPU kept busy):")
    for name, fn in [("xp.empty 2 MiB", lambda: xp.empty((args.batch, sizes[1]), np.float32)),
                     ("xp.matmul", lambda: xp.matmul(a, w)),
                     ("backend.matmul (gemmEx)", lambda: backend.matmul(a, w)),
                     ("backend.matmul a.T @ a", lambda: backend.matmul(a.T, a)),
                     ("a * a", lambda: a * a),
                     ("a.sum(axis=0)", lambda: a.sum(axis=0)),
                     ("relu forward (kernel)", lambda: apply_forward(backend, "relu", a, 0.0)),
                     ("relu backward (kernel)", lambda: apply_backward(backend, "relu", a, a, 0.0)),
                     ("bias + relu backward", lambda: bias_act_backward(backend, a, a, "relu", 0.0, True)),
                     ("Tensor relu (Function)", lambda: gpugrad.Tensor._make(a, False).relu())]:
        print(f"   {name:28s} {per_call_us(fn, 2000, sync):8.1f}")


if __name__ == "__main__":
    main()
