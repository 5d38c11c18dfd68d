#!/usr/bin/env python
"""Where the lecture's step (64 x 1000-100-10, sigmoid, squared error, SGD) spends its time, phase by
phase, for gpugrad and for the hand-written numpy step, and for the numpy step with its W1 update
done through BLAS axpy as gpugrad does it: the fastest this design can be with no Python overhead.

    python bench/lecture_phases.py [--rounds 12] [--steps 400] [--pause 0.25] [--json PATH]

Phases: the forward GEMM (x @ W1), the rest of the forward (sigmoid, h @ W2, the loss), the
backward (with numpy's W2 update, which the hand-written step does there), and the update.
Candidates run in rotated order, ``--steps`` steps per round after a pause; the figures are the
medians over every step. gpugrad's phases minus numpy+axpy's are its Python overhead.
"""
import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gpugrad  # noqa: E402
import gpugrad.functional as F  # noqa: E402
from gpugrad import optim  # noqa: E402
from gpugrad.backend import cpu_blas  # noqa: E402
from gpugrad.benchmark import _data, _init  # noqa: E402

PHASES = ("forward GEMM", "rest of forward", "backward", "update", "step")
SIZES, BATCH, LR = [1000, 100, 10], 64, 1e-4


def _gpugrad(weights, x, y):
    X, Y = gpugrad.tensor(x), gpugrad.tensor(y)
    W = [gpugrad.tensor(w, requires_grad=True) for w in weights]
    opt = optim.SGD(W, lr=LR)
    clock = time.perf_counter

    def step():
        t0 = clock()
        h = X @ W[0]
        t1 = clock()
        loss = F.mse_loss(F.sigmoid(h) @ W[1], Y, reduction="sum")
        t2 = clock()
        opt.zero_grad()
        loss.backward()
        t3 = clock()
        opt.step()
        return t0, t1, t2, t3, clock()
    return step


def _numpy(weights, x, y, update):
    w = [a.copy() for a in weights]
    clock = time.perf_counter

    def step():
        t0 = clock()
        z = x @ w[0]
        t1 = clock()
        h = 1 / (1 + np.exp(-z))
        diff = h @ w[1] - y
        np.square(diff).sum()
        grad = 2.0 * diff
        t2 = clock()
        grad_w2 = h.T @ grad
        grad_h = grad @ w[1].T
        grad_h *= h * (1 - h)
        w[1] -= LR * grad_w2
        grad_w1 = x.T @ grad_h
        t3 = clock()
        update(grad_w1, w[0])
        return t0, t1, t2, t3, clock()
    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--pause", type=float, default=0.25, help="seconds of sleep before each candidate's round")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    weights, _ = _init(SIZES, False, np.float32)
    x, y = _data(SIZES, BATCH, "sse", np.float32)
    blas = cpu_blas.blas()
    candidates = {"gpugrad": _gpugrad(weights, x, y),
                  "numpy": _numpy(weights, x, y, lambda g, p: p.__isub__(LR * g))}
    if blas is not None:
        candidates["numpy, W1 update by axpy"] = _numpy(weights, x, y, lambda g, p: blas.axpby(-LR, g, 1.0, p))
    names = list(candidates)
    samples = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            time.sleep(args.pause)
            step = candidates[name]
            for _ in range(args.steps):
                t = step()
                samples[name].append([t[1] - t[0], t[2] - t[1], t[3] - t[2], t[4] - t[3], t[4] - t[0]])
    result = {name: dict(zip(PHASES, (np.median(np.array(s), axis=0) * 1e6).round(1).tolist()))
              for name, s in samples.items()}
    print(f"{'us per step (medians)':28s}" + "".join(f"{p:>17s}" for p in PHASES))
    for name, phases in result.items():
        print(f"{name:28s}" + "".join(f"{phases[p]:17.1f}" for p in PHASES))
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, "steps": args.steps, "pause": args.pause,
                                         "numpy": np.__version__, "us_per_step": result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
