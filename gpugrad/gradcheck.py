"""Check analytic gradients against central differences, in float64."""
from __future__ import annotations

import numpy as np

from .autograd import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message shows the worst elements."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, directions=4, elementwise_limit=200, seed=0) -> bool:
    """Compare the gradients of ``fn(*inputs)`` with central differences.

    Every floating input is copied to float64. The output is reduced to a scalar through a fixed
    random projection r (so non-scalar outputs are checked too). Each input is checked along
    ``directions`` random directions d: (f(x + eps d) - f(x - eps d)) / 2eps against <grad, d>,
    and, when it has at most ``elementwise_limit`` elements, element by element. Returns True or
    raises ``GradcheckError`` naming the input and its worst elements.
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    rng = np.random.default_rng(seed)
    leaves = [_as_float64_leaf(t) for t in inputs]
    backend = next(t.backend for t in leaves if isinstance(t, Tensor))
    out = fn(*leaves)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    projection_host = rng.standard_normal(out.shape)
    projection = out.backend.asarray(projection_host)

    def scalar(*args):
        with no_grad():
            y = fn(*args)
        return float((y.backend.to_numpy(y.data).astype(np.float64) * projection_host).sum())

    out.backward(Tensor._make(projection.astype(out.dtype), False))
    for index, leaf in enumerate(leaves):
        if not (isinstance(leaf, Tensor) and leaf.requires_grad):
            continue
        analytic = np.zeros(leaf.shape) if leaf.grad is None else backend.to_numpy(leaf.grad.data).astype(np.float64)
        base = backend.to_numpy(leaf.data).copy()

        def f_at(values):
            leaf.data[...] = backend.asarray(values)
            result = scalar(*leaves)
            leaf.data[...] = backend.asarray(base)
            return result

        rows = []
        for _ in range(directions):
            d = rng.standard_normal(base.shape)
            numeric = (f_at(base + eps * d) - f_at(base - eps * d)) / (2 * eps)
            rows.append(("direction", numeric, float((analytic * d).sum())))
        if base.size <= elementwise_limit:
            numeric = np.zeros(base.shape)
            for position in np.ndindex(base.shape):
                bump = np.zeros(base.shape)
                bump[position] = eps
                numeric[position] = (f_at(base + bump) - f_at(base - bump)) / (2 * eps)
            rows += [(f"element {p}", numeric[p], analytic[p]) for p in np.ndindex(base.shape)]
        bad = [(abs(n - a), where, n, a) for where, n, a in rows if not abs(n - a) <= atol + rtol * abs(n)]
        if bad:
            bad.sort(key=lambda row: -row[0] if np.isfinite(row[0]) else -np.inf)
            shown = "\n".join(f"  {where}: numerical {n:.8g}, analytic {a:.8g}, |diff| {e:.3g}"
                              for e, where, n, a in bad[:5])
            raise GradcheckError(
                f"gradcheck failed for input {index} (shape {leaf.shape}): {len(bad)} of {len(rows)} "
                f"checks outside atol={atol}, rtol={rtol}; worst:\n{shown}"
            )
    return True


def _as_float64_leaf(value):
    if not isinstance(value, Tensor):
        return value
    data = value.data
    if data.dtype.kind == "f":
        data = data.astype(np.float64, copy=True)
    return Tensor(data, requires_grad=value.requires_grad)
