#!/usr/bin/env python
"""Python overhead per recorded op: gpugrad's forward + backward of one small op against the bare
numpy calls that do the same arithmetic (the forward product and the two gradient products), and
the lecture's whole training step, on tiny arrays and at the lecture's size, against the hand-written
numpy step and against the same step on a minimal reverse-mode engine (the floor of an engine in Python).

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

    # The lecture's whole step (two matmuls, sigmoid, squared error, backward, SGD), first on arrays so
    # small (4 x 8-8-4) that the arithmetic is negligible (what is left is the framework's Python), then
    # at the lecture's size (64 x 1000-100-10), with the ratio to numpy within each round.
    # "minimal engine": the same step written as a user writes it, on the smallest reverse-mode engine
    # below (a tape; no checks, hooks, autocast, capture or devices): the floor of an engine in Python.
    # Every candidate of a run works on the same arrays (gpugrad.app.benchmark.shared_arrays says why); the
    # lecture's size is run on three sets of arrays (three addresses of the weights).
    from gpugrad.app.benchmark import _data, _init, gpugrad_setup, numpy_setup, shared_arrays, written_setup
    for label, sizes, batch, number, sets in (("4 x 8-8-4 (all overhead)", [8, 8, 4], 4, 2000, 1),
                                              ("64 x 1000-100-10 (the lecture's)", [1000, 100, 10], 64, 100, 3)):
        net = (sizes, batch, False, "sse", "sigmoid", np.float32)
        for _ in range(sets):
            with shared_arrays():
                steps = {"numpy": numpy_setup(*net, 1e-4)[0],
                         "gpugrad (F.mse_loss, optim.SGD)": gpugrad_setup(*net, "cpu", 1e-4)[0],
                         "gpugrad as written": written_setup(*net, "cpu", 1e-4)[0],
                         "minimal engine as written": minimal_step(*_init(sizes, False, np.float32)[0],
                                                                   *_data(sizes, batch, "sse", np.float32)),
                         "gpugrad as written, compiled": gpugrad.compile(written_setup(*net, "cpu", 1e-4)[0])}
                address = _init(sizes, False, np.float32)[0][0].ctypes.data
            times = {name: [] for name in steps}
            for _ in range(9):  # interleaved rounds: the machine's speed drifts
                for name, fn in steps.items():
                    times[name].append(statistics.median(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6)
            print(f"the lecture's step at {label}, float32, medians of 9 interleaved rounds "
                  f"(w1 at {address % 4096} mod 4096):")
            for name, values in times.items():
                ratio = statistics.median([a / b for a, b in zip(values, times["numpy"])])
                print(f"  {name:34s} {statistics.median(values):7.1f} us  / numpy {ratio:5.2f}")


class _Node:
    """The minimal engine: a tape (Wengert list) of the nodes that need a gradient, each with its
    inputs and a backward closure; backward walks the tape in reverse. No checks, hooks, dtypes or
    devices; only the gradients something needs are computed (none for the data)."""
    __slots__ = ("data", "grad", "requires", "parents", "backward")
    tape = []

    def __init__(self, data, requires=False, parents=None, backward=None):
        self.data, self.grad, self.requires, self.parents, self.backward = data, None, requires, parents, backward
        if requires and parents is not None:
            _Node.tape.append(self)

    def __matmul__(self, other):
        a, b, da, db = self.data, other.data, self.requires, other.requires
        return _Node(a @ b, da or db, (self, other), lambda g: (g @ b.T if da else None, a.T @ g if db else None))

    def __sub__(self, other):
        da, db = self.requires, other.requires
        return _Node(self.data - other.data, da or db, (self, other), lambda g: (g if da else None, -g if db else None))

    def square(self):
        a = self.data
        return _Node(a * a, self.requires, (self,), lambda g: ((a + a) * g,))

    def sigmoid(self):
        y = 1 / (1 + np.exp(-self.data))
        return _Node(y, self.requires, (self,), lambda g: ((1 - y) * y * g,))

    def sum(self):
        shape = self.data.shape
        return _Node(self.data.sum(), self.requires, (self,), lambda g: (np.broadcast_to(g, shape),))

    def backprop(self):
        self.grad = np.ones_like(self.data)
        for node in reversed(_Node.tape):
            for parent, g in zip(node.parents, node.backward(node.grad)):
                if g is not None:
                    parent.grad = g if parent.grad is None else parent.grad + g
        _Node.tape.clear()


def minimal_step(w1_np, w2_np, x_np, y_np):
    w1, w2, x, y = _Node(w1_np, True), _Node(w2_np, True), _Node(x_np), _Node(y_np)

    def step():
        loss = ((x @ w1).sigmoid() @ w2 - y).square().sum()
        w1.grad = w2.grad = None
        loss.backprop()
        w1.data -= 1e-4 * w1.grad
        w2.data -= 1e-4 * w2.grad
    return step


if __name__ == "__main__":
    main()
