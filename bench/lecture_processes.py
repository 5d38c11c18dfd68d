#!/usr/bin/env python
"""The lecture's step, each candidate in a process of its own, processes interleaved in rounds.

    python bench/lecture_processes.py [--dtype float32] [--rounds 4] [--compiled] [--tree before=/path/to/old/checkout]

In one process the candidates share glibc's heap: which of them gets its 400-800 KB arrays from
mmap (and page faults) depends on what the others allocated before, and moved the lecture's
ratios by up to 30% between candidate orders. A process per candidate measures each program as a
user runs it. Each prints the median of its per-step times over 1.5 s after 200 warm-up steps;
the ratio is to hand-written numpy run just before and just after it.
"""
import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CANDIDATE = r'''
import sys, time, statistics, numpy as np
cand, dtype = sys.argv[1], np.dtype(sys.argv[2])
from gpugrad.app.benchmark import MODELS, numpy_setup, gpugrad_setup
sizes, batch, biases, loss = MODELS["lecture"]
compiled = cand.endswith("-compiled")  # the same program, its step given to gpugrad.compile
cand = cand.removesuffix("-compiled")
if cand == "numpy":
    step, _ = numpy_setup(sizes, batch, biases, loss, "sigmoid", dtype, 1e-4)
elif cand == "gpugrad":
    step, _ = gpugrad_setup(sizes, batch, biases, loss, "sigmoid", dtype, "cpu", 1e-4)
else:  # the lecture's net as a user writes it (bench/engine_ab.py's written_step, from this tree's bench/:
    # the trees compared against may predate gpugrad.app.benchmark.written_setup)
    import gpugrad
    sys.path.insert(0, sys.argv[3])
    from engine_ab import written_step
    step = written_step(gpugrad, sizes, batch, dtype)
if compiled:
    import gpugrad
    step = gpugrad.compile(step)
for _ in range(200):
    step()
times, end = [], time.perf_counter() + 1.5
while time.perf_counter() < end:
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
print(statistics.median(times) * 1e6)
'''


# NOTE: glibc's malloc moves its mmap threshold as blocks are freed; whether the step's 400-800 KB arrays then come
# from mmap (page faults at every step) or from the heap depends on the order of earlier allocations, and flips a
# process between two speeds (up to 1.9x here). --fixed-malloc pins both thresholds in every candidate's process.
FIXED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "8000000", "MALLOC_TRIM_THRESHOLD_": "64000000"}
MALLOC_ENV = {}


def run(tree, candidate, dtype):
    env = dict(os.environ, PYTHONPATH=str(tree), **MALLOC_ENV)
    # NOTE: cwd is the tree too: `python -c` puts the working folder first on sys.path
    done = subprocess.run([sys.executable, "-c", CANDIDATE, candidate, dtype, str(ROOT / "bench")],
                          capture_output=True, text=True, env=env, cwd=tree, timeout=300)
    if done.returncode:
        raise SystemExit(f"{candidate} in {tree}: {done.stderr.strip().splitlines()[-1]}")
    return float(done.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of another checkout to compare")
    parser.add_argument("--compiled", action="store_true", help="also each gpugrad candidate through gpugrad.compile")
    parser.add_argument("--fixed-malloc", action="store_true", help="the same fixed glibc malloc thresholds in every "
                        "process (numpy's too): compares the code without the allocator's two speeds")
    args = parser.parse_args(argv)
    MALLOC_ENV.update(FIXED_MALLOC if args.fixed_malloc else {})
    trees = {"this": ROOT, **dict(t.split("=", 1) for t in args.tree)}
    ratios = {}
    for r in range(args.rounds):
        # NOTE: numpy runs before and after every candidate, and each candidate is compared with the mean of its
        # two neighbours: the machine's speed drifts within a round, and one numpy figure per round moved ratios
        # by 30% when it landed in a fast or slow minute.
        numpy_us = run(ROOT, "numpy", args.dtype)
        for name, tree in trees.items():
            for candidate in ("gpugrad", "written") + (("gpugrad-compiled", "written-compiled") if args.compiled else ()):
                us = run(tree, candidate, args.dtype)
                after = run(ROOT, "numpy", args.dtype)
                reference, numpy_us = (numpy_us + after) / 2, after
                ratios.setdefault((name, candidate), []).append(us / reference)
                print(f"round {r + 1}: {name:8s} {candidate:16s} {us:8.1f} us, numpy {reference:8.1f} us, "
                      f"ratio {us / reference:.3f}", flush=True)
    for (name, candidate), values in ratios.items():
        print(f"{name} {candidate}: median ratio to numpy {statistics.median(values):.3f} over {len(values)} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
