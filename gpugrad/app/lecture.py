"""``gpugrad lecture``: the lecture's worked examples, forward values then each backward step as
``[local gradient] x [upstream gradient] = result``, with a picture of each graph."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..creation import tensor
from ..viz import format_value, gradients, graph_of, render

EXAMPLES = ("add-mul", "sigmoid-neuron", "max-router", "l2-vector", "two-layer")


def _named(value, name, requires_grad=True):
    return tensor(np.asarray(value, dtype=np.float64), requires_grad=requires_grad, name=name)


def _name(t, auto):
    if t.name is None:  # constants by their value, other unnamed tensors t0, t1, ...
        constant = t.creator is None and not t.requires_grad and t.data.size == 1
        t.name = format_value(t.backend.to_numpy(t.data)) if constant else f"t{len(auto)}"
        auto.append(t)
    return t.name


def _local(function, index, value_of):
    """The gate's local gradient d(output)/d(input index), as the slides write it."""
    name = function.name
    others = [t for i, t in enumerate(function.inputs) if i != index]
    x = function.inputs[index]
    if name in ("Add", "Sum"):
        return "1"
    if name == "Sub":
        return "1" if index == 0 else "-1"
    if name == "Mul":
        return format_value(value_of(others[0]))
    if name == "Div" and index == 1:
        a, b = value_of(function.inputs[0]), value_of(x)
        return format_value(-a / (b * b))
    if name == "Exp":
        return format_value(np.exp(value_of(x)))
    if name == "Square":
        return format_value(2 * value_of(x))
    if name == "Sigmoid":
        s = 1 / (1 + np.exp(-value_of(x)))
        return format_value(s * (1 - s))
    if name == "Maximum":
        a, b = (value_of(t) for t in function.inputs)
        wins = (a > b) if index == 0 else (b > a)
        return format_value(np.where(a == b, 0.5, wins.astype(float)))
    if name == "MatMul":
        other = value_of(others[0])
        return (f"{format_value(other)}ᵀ" if index == 0 else f"{format_value(other)}ᵀ")
    return f"d{name}/d{x.name}"


def walkthrough(output, title, out_dir, log=print):
    """Print forward values and the backward steps of ``output``'s graph; render its picture."""
    functions, leaves = graph_of(output)
    auto = []
    for f in functions:
        for t in f.inputs:
            _name(t, auto)
    output.name = output.name or "f"
    value_of = lambda t: t.backend.to_numpy(t.data)  # noqa: E731
    log(f"\n== {title}")
    log("forward:")
    for leaf in leaves:
        if leaf.requires_grad or leaf.data.size > 1:
            log(f"  {leaf.name} = {format_value(value_of(leaf))}")
    producer = {}
    for f in functions:
        out = f.outputs[0]()
        if out is None:
            continue
        producer[id(f)] = out
        args = ", ".join(t.name for t in f.inputs)
        log(f"  {out.name or output.name} = {f.name}({args}) = {format_value(value_of(out))}")
    grads = gradients(output)
    log("backward ([local gradient] x [upstream gradient] = result):")
    log(f"  d{output.name}/d{output.name} = {format_value(np.ones(output.shape))}")
    for f in reversed(functions):
        out = producer.get(id(f))
        upstream = grads.get(id(out)) if out is not None else None
        if upstream is None:
            continue
        for i, t in enumerate(f.inputs):
            result = grads.get(id(t))
            if result is None or not t.requires_grad:
                continue
            if len(set(id(u) for u in f.inputs)) < len(f.inputs):  # x*x: show the total
                local = "(both inputs)"
            else:
                local = _local(f, i, value_of)
            contribution = f"{format_value(t.backend.to_numpy(result))}"
            log(f"  d{output.name}/d{t.name} = [{local}] x [{format_value(t.backend.to_numpy(upstream))}] = {contribution}"
                + ("   (sum over branches)" if _uses(t, functions) > 1 else ""))
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        path = render(output, Path(out_dir) / f"{title.split(':')[0]}.svg", title=title)
        log(f"picture: {path}")
    for t in auto:  # leave the user's tensors as they were
        t.name = None
    return grads


def _uses(t, functions):
    return sum(1 for f in functions for u in f.inputs if u is t)


def add_mul():
    x, y, z = _named(-2.0, "x"), _named(5.0, "y"), _named(-4.0, "z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return f, "add-mul: f = (x + y) z"


def sigmoid_neuron():
    w0, x0, w1, x1, w2 = (_named(v, n) for v, n in ((2.0, "w0"), (-1.0, "x0"), (-3.0, "w1"), (-2.0, "x1"), (-3.0, "w2")))
    dot = w0 * x0 + w1 * x1 + w2
    dot.name = "dot"
    neg = dot * -1
    neg.name = "neg"
    e = neg.exp()
    e.name = "e"
    d = e + 1
    d.name = "d"
    f = 1 / d
    f.name = "f"
    return f, "sigmoid-neuron: f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2)))"


def max_router():
    x, y, z, w = _named(3.0, "x"), _named(-4.0, "y"), _named(2.0, "z"), _named(-1.0, "w")
    xy = x * y
    xy.name = "xy"
    m = F.maximum(z, w)
    m.name = "max"
    s = xy + m
    s.name = "s"
    f = s * 2
    f.name = "f"
    return f, "max-router: f = ((x y) + max(z, w)) 2"


def l2_vector():
    W = _named([[0.1, 0.5], [-0.3, 0.8]], "W")
    x = _named([0.2, 0.4], "x")
    q = W @ x
    q.name = "q"
    f = (q ** 2).sum()
    f.name = "f"
    return f, "l2-vector: f = ||W x||^2"


def two_layer(log=print, steps=5):
    rng = np.random.default_rng(0)
    N, D_in, H, D_out = 64, 1000, 100, 10
    X, Y = _named(rng.standard_normal((N, D_in)), "X", False), _named(rng.standard_normal((N, D_out)), "Y", False)
    W1, W2 = _named(rng.standard_normal((D_in, H)), "W1"), _named(rng.standard_normal((H, D_out)), "W2")
    log("\n== two-layer: q = X W1, h = sigmoid(q), Y_hat = h W2, L = sum((Y_hat - Y)^2); 64 x 1000-100-10")
    for t in range(steps):
        q = X @ W1
        h = q.sigmoid()
        y_pred = h @ W2
        loss = ((y_pred - Y) ** 2).sum()
        W1.grad = W2.grad = None
        loss.backward()
        log(f"  step {t}: L = {loss.item():.1f}; dW1 {W1.grad.shape} |dW1| = {np.linalg.norm(W1.grad.numpy()):.4g}, "
            f"dW2 {W2.grad.shape} |dW2| = {np.linalg.norm(W2.grad.numpy()):.4g}")
        with no_grad():
            W1 -= 1e-4 * W1.grad
            W2 -= 1e-4 * W2.grad
    q = X @ W1
    q.name = "q"
    h = q.sigmoid()
    h.name = "h"
    y_pred = h @ W2
    y_pred.name = "Y_hat"
    diff = y_pred - Y
    diff.name = "diff"
    f = (diff ** 2).sum()
    f.name = "L"
    return f, "two-layer: the lecture's 2-layer net (shapes on the edges)"


def run(args, log=print) -> int:
    chosen = EXAMPLES if args.example == "all" else (args.example,)
    builders = {"add-mul": add_mul, "sigmoid-neuron": sigmoid_neuron, "max-router": max_router,
                "l2-vector": l2_vector, "two-layer": lambda: two_layer(log)}
    for name in chosen:
        output, title = builders[name]()
        walkthrough(output, title, args.out, log)
    return 0
