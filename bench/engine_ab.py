#!/usr/bin/env python
"""This tree's engine against another checkout's, in one process, alternating every 60 steps.

    python bench/engine_ab.py --other /path/to/old/checkout [--dtype float32] [--rounds 40] [--tiny]

For engine changes worth a few percent: on this machine, whose speed moves by up to 2x within
seconds, processes run one after another (bench/lecture_processes.py) scatter the lecture's ratios
over 0.9-2.3x, while two trees alternating every few milliseconds in one process see the same
machine. The other checkout's package is copied under another name (its modules import each other
relatively). Candidates: hand-written numpy and the lecture's step as a user writes it
(((sigmoid(x @ w1) @ w2 - y) ** 2).sum(), updates through .data) on each tree; the medians of each
round's per-step medians, and the after/before ratio within each round. Pin glibc's malloc
thresholds in the environment (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_; see
lecture_processes.py) so that the trees share a heap without the allocator's two speeds.
"""
import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def written_step(G, sizes, batch, dtype):
    """The written step on tree ``G``, on the arrays of ``shared_arrays()`` (both trees and numpy share them)."""
    from gpugrad.app.benchmark import _data, _init
    weights, _ = _init(sizes, False, dtype)
    x, y = _data(sizes, batch, "sse", dtype)
    X, Y = G.from_numpy(x), G.from_numpy(y)
    w1, w2 = (G.from_numpy(w).requires_grad_() for w in weights)
    F = importlib.import_module(G.__name__ + ".functional")

    def step():
        loss = ((F.sigmoid(X @ w1) @ w2 - Y) ** 2).sum()
        w1.grad = w2.grad = None
        loss.backward()
        w1.data -= 1e-4 * w1.grad.data
        w2.data -= 1e-4 * w2.grad.data
    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="another checkout (its gpugrad/ is copied and imported)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--tiny", action="store_true", help="4 x 8-8-4: all overhead (default: 64 x 1000-100-10)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import gpugrad
    from gpugrad.app.benchmark import numpy_setup, shared_arrays
    folder = Path(tempfile.mkdtemp())
    shutil.copytree(Path(args.other) / "gpugrad", folder / "gpugrad_other")
    sys.path.insert(0, str(folder))
    other = importlib.import_module("gpugrad_other")
    dtype = np.dtype(args.dtype)
    sizes, batch = ([8, 8, 4], 4) if args.tiny else ([1000, 100, 10], 64)
    with shared_arrays():  # one set of arrays for all three (shared_arrays says why)
        steps = {"numpy": numpy_setup(sizes, batch, False, "sse", "sigmoid", dtype, 1e-4)[0],
                 "other": written_step(other, sizes, batch, dtype), "this": written_step(gpugrad, sizes, batch, dtype)}
    for step in steps.values():
        for _ in range(100):
            step()
    times = {name: [] for name in steps}
    for r in range(args.rounds):
        for name, step in (list(steps.items()) if r % 2 else list(reversed(steps.items()))):
            each = []
            for _ in range(60):
                start = time.perf_counter()
                step()
                each.append(time.perf_counter() - start)
            times[name].append(statistics.median(each) * 1e6)
    for name, values in times.items():
        ratio = "" if name == "numpy" else \
            f", / numpy {statistics.median([a / b for a, b in zip(values, times['numpy'])]):.3f}"
        print(f"{name:6s} {statistics.median(values):8.1f} us{ratio}")
    print(f"this / other {statistics.median([a / b for a, b in zip(times['this'], times['other'])]):.3f} "
          f"({args.rounds} rounds, {args.dtype}, {'tiny' if args.tiny else 'lecture'} sizes)")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
