#!/usr/bin/env python
"""What gpugrad.compile's guards cost a replay: the compiled lecture step and the compiled MLP (as a user writes
them: the lecture's F.mse_loss + optim.SGD; nn.Sequential of Linear + ReLU with SGD and momentum, 784-1024-1024-10
at batch 256), each replayed with its guards checked and with the check taken out (this script only), in rounds
that alternate the two, medians quoted; and the check alone (``Guards.failing()``), per call.

    python bench/guard_cost.py [--rounds 15] [--device cpu]
"""
import argparse
import statistics
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gpugrad  # noqa: E402
import gpugrad.functional as F  # noqa: E402
from gpugrad import nn, optim  # noqa: E402
from gpugrad.app.benchmark import MODELS, gpugrad_setup  # noqa: E402
from gpugrad.capture.guards import Guards  # noqa: E402


def lecture(device):
    sizes, batch, biases, loss = MODELS["lecture"]
    step, sync = gpugrad_setup(sizes, batch, biases, loss, "sigmoid", np.float32, device, 1e-4)
    return gpugrad.compile(step, device=device), (), sync


def mlp(device):
    gpugrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                          nn.Linear(1024, 10)).to(device)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = gpugrad.tensor(rng.standard_normal((256, 784)).astype(np.float32), device=device)
    y = gpugrad.tensor(rng.integers(0, 10, 256), device=device)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return gpugrad.compile(step), (x, y), gpugrad.get_backend(device).synchronize


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    checked = Guards.failing
    for name, make, steps in (("lecture 64 x 1000-100-10", lecture, 40), ("MLP 784-1024-1024-10 @256", mlp, 5)):
        run, call_args, sync = make(args.device)
        for _ in range(4):  # warm-up, capture, checked first replay, one more
            run(*call_args)
        assert run.captures == 1
        guards = next(iter(run._captures.values()))[0].guards
        per_call_us = statistics.median(timeit.repeat(guards.failing, number=2000, repeat=7)) / 2000 * 1e6
        times = {"with guards": [], "without": []}
        for _ in range(args.rounds):
            for label in times:
                Guards.failing = checked if label == "with guards" else (lambda self: None)
                sync()
                start = time.perf_counter()
                for _ in range(steps):
                    run(*call_args)
                sync()
                times[label].append((time.perf_counter() - start) / steps * 1e6)
        Guards.failing = checked
        ratios = [a / b for a, b in zip(times["with guards"], times["without"])]
        counts = (len(guards.modules), len(guards.tensors), sum(len(g) for _, g, _ in guards.optimizers))
        print(f"{name}: replay with guards {statistics.median(times['with guards']):.1f} us, without "
              f"{statistics.median(times['without']):.1f} us, ratio {statistics.median(ratios):.3f} "
              f"({args.rounds} rounds); the check alone {per_call_us:.2f} us per call "
              f"({counts[0]} modules, {counts[1]} tensors, {counts[2]} optimizer groups)")


if __name__ == "__main__":
    main()
