#!/usr/bin/env python
"""Python overhead per recorded op: gpugrad's forward + backward of one small op against the bare
numpy calls that do the same arithmetic (the forward product and the two gradient products), and
the lecture's whole training step on tiny arrays against the hand-written numpy step and against the
same step on a minimal reverse-mode engine (the floor of any engine written in Python).

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
    # "minimal engine": the same step written as a user writes it, on the smallest reverse-mode engine
    # below (no checks, hooks, autocast, capture or devices): the floor of any engine in Python.
    from gpugrad.benchmark import _data, _init, gpugrad_setup, numpy_setup, written_setup
    tiny = ([8, 8, 4], 4, False, "sse", "sigmoid", np.float32)
    steps = {"numpy": numpy_setup(*tiny, 1e-3)[0], "gpugrad (F.mse_loss, optim.SGD)": gpugrad_setup(*tiny, "cpu", 1e-3)[0],
             "gpugrad as written": written_setup(*tiny, "cpu", 1e-3)[0], "minimal engine as written": minimal_step(
                 *_init(tiny[0], False, np.float32)[0], *_data(tiny[0], tiny[1], "sse", np.float32))}
    times = {name: [] for name in steps}
    for _ in range(5):  # interleaved rounds: the machine's speed drifts
        for name, fn in steps.items():
            times[name].append(time_us(fn))
    print("the lecture's step at 4 x 8-8-4 (all overhead), medians of 5 interleaved rounds:")
    for name, values in times.items():
        print(f"  {name:34s} {statistics.median(values):7.1f} us")


class _Node:
    """The minimal engine: a node per op, its inputs and a backward closure, a topological sort."""
    __slots__ = ("data", "grad", "parents", "backward")

    def __init__(self, data, parents=(), backward=None):
        self.data, self.grad, self.parents, self.backward = data, None, parents, backward

    def __matmul__(self, other):
        return _Node(self.data @ other.data, (self, other), lambda g: (g @ other.data.T, self.data.T @ g))

    def __sub__(self, other):
        return _Node(self.data - other.data, (self, other), lambda g: (g, -g))

    def square(self):
        return _Node(self.data * self.data, (self,), lambda g: ((self.data + self.data) * g,))

    def sigmoid(self):
        with np.errstate(over="ignore"):
            y = 1 / (1 + np.exp(-self.data))
        return _Node(y, (self,), lambda g: ((1 - y) * y * g,))

    def sum(self):
        return _Node(self.data.sum(), (self,), lambda g: (np.broadcast_to(g, self.data.shape),))

    def backprop(self):
        order, seen = [], set()
        def visit(node):
            if id(node) not in seen:
                seen.add(id(node))
                for parent in node.parents:
                    visit(parent)
                order.append(node)
        visit(self)
        self.grad = np.ones_like(self.data)
        for node in reversed(order):
            if node.backward is not None:
                for parent, g in zip(node.parents, node.backward(node.grad)):
                    parent.grad = g if parent.grad is None else parent.grad + g


def minimal_step(w1_np, w2_np, x_np, y_np):
    w1, w2, x, y = _Node(w1_np), _Node(w2_np), _Node(x_np), _Node(y_np)

    def step():
        loss = ((x @ w1).sigmoid() @ w2 - y).square().sum()
        loss.backprop()
        w1.data -= 1e-3 * w1.grad
        w2.data -= 1e-3 * w2.grad
        w1.grad = w2.grad = None
    return step


if __name__ == "__main__":
    main()
