#!/usr/bin/env python
"""Python overhead per recorded op: gpugrad's forward + backward of one small op against the bare
numpy calls that do the same arithmetic (the forward product and the two gradient products), and
the lecture's whole training step on tiny arrays against the hand-written numpy step.

    python bench/op_overhead.py
"""
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gpugrad  # noqa: E402


def main():
    a_np, b_np, g_np = (np.random.default_rng(i).standard_normal((8, 8)) for i in range(3))
    a = gpugrad.tensor(a_np, requires_grad=True)
    b = gpugrad.tensor(b_np, requires_grad=True)
    g = gpugrad.tensor(g_np)

    def gpugrad_forward():
        return a * b

    def gpugrad_forward_backward():
        a.grad = b.grad = None
        (a * b).backward(g)

    def numpy_forward_backward():
        return a_np * b_np, g_np * b_np, g_np * a_np

    def time_us(fn):
        runs = timeit.repeat(fn, number=2000, repeat=9)
        return statistics.median(runs) / 2000 * 1e6

    rows = [("numpy a * b", time_us(lambda: a_np * b_np)),
            ("gpugrad a * b (forward, recorded)", time_us(gpugrad_forward)),
            ("numpy forward + both gradient products", time_us(numpy_forward_backward)),
            ("gpugrad forward + backward", time_us(gpugrad_forward_backward))]
    for name, us in rows:
        print(f"{name:42s} {us:7.2f} us")
    print(f"overhead per recorded op, forward + backward: {rows[3][1] - rows[2][1]:.2f} us "
          f"(forward alone: {rows[1][1] - rows[0][1]:.2f} us)")

    # The lecture's whole step (two matmuls, sigmoid, squared error, backward, SGD) on arrays so
    # small (4 x 8-8-4) that the arithmetic is negligible: what is left is the framework's Python.
    from gpugrad.benchmark import gpugrad_setup, numpy_setup
    tiny = ([8, 8, 4], 4, False, "sse", "sigmoid", np.float32)
    gpugrad_step = gpugrad_setup(*tiny, "cpu", 1e-3)[0]
    numpy_step = numpy_setup(*tiny, 1e-3)[0]
    steps = {name: time_us(fn) for name, fn in (("numpy", numpy_step), ("gpugrad", gpugrad_step))}
    print(f"the lecture's step at 4 x 8-8-4 (all overhead): gpugrad {steps['gpugrad']:.1f} us, "
          f"numpy {steps['numpy']:.1f} us")


if __name__ == "__main__":
    main()
