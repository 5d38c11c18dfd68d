"""What every section shares: the results, the section decorator, and the timers."""
from __future__ import annotations

import functools
import statistics
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


RESULTS: dict = {"sections": {}, "errors": {}, "skipped": {}}


def section(name):
    """A measured section: run in its own process (main's run_section), what it returns or raises kept in RESULTS."""
    def wrap(fn):
        @functools.wraps(fn)
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


def _wall_per_step(step, sync, steps):
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - start) / steps * 1e3


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


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"
