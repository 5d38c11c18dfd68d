"""Matrix products: ``a @ b`` with numpy's broadcasting rules, and the linear layer.

On the GPU both go through cuBLAS (the device object's GEMM: one GemmEx, or one GemmStridedBatchedEx for
a batch, in the compute type ``set_matmul_precision`` asks for). Batched gradients
swap only the last two axes, and sum back over broadcast batch dimensions.
"""
from __future__ import annotations

import contextlib
import math

from ..autograd import CaptureError, Function, capturing, sum_to
from ..backend import Backend
from ..dtypes import LOW_FLOATS, accumulator, working
from .activation import activation_param, apply_backward, apply_forward


def _swap(x):
    return x.swapaxes(-1, -2)


def check_matmul_shapes(a_shape, b_shape, op="matmul"):
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"{op}: both operands need at least one dimension, got shapes {tuple(a_shape)} and {tuple(b_shape)}")
    k_a = a_shape[-1]
    k_b = b_shape[-2] if len(b_shape) > 1 else b_shape[0]
    if k_a != k_b:
        raise ValueError(f"{op}: shapes {tuple(a_shape)} and {tuple(b_shape)} are not aligned "
                         f"(inner dimensions {k_a} and {k_b} differ)")
    batch_a, batch_b = tuple(a_shape[:-2]), tuple(b_shape[:-2])
    for m, n in zip(reversed(batch_a), reversed(batch_b)):
        if m != n and m != 1 and n != 1:
            raise ValueError(f"{op}: batch dimensions of shapes {tuple(a_shape)} and {tuple(b_shape)} do not broadcast")


def check_same_dtype(a, b, op, names="operands", fix="convert one, e.g. x.float(), x.double() or x.astype(dtype)"):
    """matmul and linear refuse mixed dtypes in the forward, as PyTorch does: no silent upcast of a model."""
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: the {names} have different dtypes ({a.dtype} and {b.dtype}); {fix}")


class MatMul(Function):
    amp = "low"

    def forward(self, a, b):
        check_same_dtype(a, b, "matmul")
        self.saved = (a, b)
        try:
            return self.backend.matmul(a, b)
        except ValueError:
            check_matmul_shapes(a.shape, b.shape)  # raises with both shapes named
            raise

    def backward(self, grad_output):
        a, b = self.saved
        backend = self.backend
        if a.ndim == 2 and b.ndim == 2:  # the common case, without the general bookkeeping below
            return (backend.matmul(grad_output, b.T) if self.needs_input_grad[0] else None,
                    backend.matmul(a.T, grad_output) if self.needs_input_grad[1] else None)
        # Promote vectors to matrices so one rule covers every case, then undo it.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad_output
        if a.ndim == 1 and b.ndim == 1:
            g = g.reshape(1, 1)
        elif a.ndim == 1:
            g = g[..., None, :]
        elif b.ndim == 1:
            g = g[..., None]
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = sum_to(backend.matmul(g, _swap(b2)), a2.shape)
            if a.ndim == 1:
                ga = ga.reshape(a.shape)
        if self.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:
                # NOTE: a weight shared over a batch: fold the batch into one GEMM instead of B GEMMs + a sum.
                k, n = b2.shape
                count = math.prod(a2.shape[:-1])
                gb = backend.matmul(a2.reshape(count, k).T, g.reshape(count, n))
            else:
                gb = sum_to(backend.matmul(_swap(a2), g), b2.shape)
            if b.ndim == 1:
                gb = gb.reshape(b.shape)
        return ga, gb


def bias_act_forward(backend, z, bias, activation, param):
    """y = act(z + bias), written into z (the fresh GEMM output): one fused kernel on the GPU."""
    kernels = backend.kernels
    if kernels is not None and kernels.bias_act_forward(z, bias, activation, param) is not None:
        return z
    if z.dtype in LOW_FLOATS:  # computed in float32 and rounded once, as the kernel does
        backend.xp.copyto(z, bias_act_forward(backend, working(z), working(bias), activation, param),
                          casting="same_kind")
        return z
    if bias is not None:
        backend.xp.add(z, bias, out=z)
    return z if activation is None else apply_forward(backend, activation, z, param, out=z)


def bias_act_backward(backend, y, grad_output, activation, param, need_bias):
    """(grad_pre, grad_bias): grad_pre = dy * act'(y), grad_bias its sum over rows (float16 summed in float32)."""
    kernels = backend.kernels
    if kernels is not None and need_bias:
        fused = kernels.bias_act_backward(y, grad_output, activation, param)
        if fused is not None:
            return fused
    grad_pre = grad_output if activation is None else apply_backward(backend, activation, y, grad_output, param)
    if not need_bias:
        return grad_pre, None
    rows = grad_pre.reshape(math.prod(grad_pre.shape[:-1]), grad_pre.shape[-1])
    return grad_pre, rows.sum(axis=0, dtype=accumulator(rows.dtype)).astype(rows.dtype, copy=False)


class Linear(Function):
    """y = act(x @ weight.T + bias): one GEMM, then the bias + activation epilogue in place.

    Saves x, weight and the output y (the activation's gradient is computed from y).
    """
    amp = "low"
    saves_output = True

    def __init__(self, activation=None, param=None):
        """``param``: the activation's parameter as ``keyword_param`` checked it (None: the default)."""
        self.activation = activation
        self.param = activation_param(activation, None, "linear") if param is None else param

    def forward(self, x, weight, bias=None):
        if x.dtype != weight.dtype:
            check_same_dtype(x, weight, "linear", "input and the weight",
                             f"convert the input (x.astype('{weight.dtype}'), x.float()) or the model (model.double())")
        if bias is not None:
            check_same_dtype(bias, weight, "linear", "bias and the weight")
        if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {tuple(x.shape)} does not match weight of shape "
                             f"{tuple(weight.shape)} (expected (..., {weight.shape[-1] if weight.ndim else '?'}) "
                             "input and (out_features, in_features) weight)")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias of shape {tuple(bias.shape)} for weight of shape {tuple(weight.shape)}; "
                             f"expected ({weight.shape[0]},)")
        y = bias_act_forward(self.backend, self.backend.matmul(x, weight.T), bias, self.activation, self.param)
        self.saved = (x, weight, y, bias is not None)
        return y

    def backward(self, grad_output):
        x, weight, y, has_bias = self.saved
        need_bias = has_bias and self.needs_input_grad[2]
        backend = self.backend
        grad_pre, grad_bias = bias_act_backward(backend, y, grad_output, self.activation, self.param, need_bias)
        gx = backend.matmul(grad_pre, weight) if self.needs_input_grad[0] else None
        gw = None
        if self.needs_input_grad[1]:
            count = math.prod(x.shape[:-1])  # not reshape(-1, ...): that cannot tell an empty axis apart
            rows = grad_pre.reshape(count, grad_pre.shape[-1])
            gw = backend.matmul(rows.T, x.reshape(count, x.shape[-1]))
        return (gx, gw, grad_bias) if has_bias else (gx, gw)


class Einsum(Function):
    """numpy's ``einsum`` (explicit "...->..." or implicit output, no "..."); each operand's gradient is
    the einsum of the output gradient with the other operands, broadcast over its indices summed alone."""
    amp = "low"
    promotes = "same"

    def __init__(self, subscripts):
        if "..." in subscripts:
            raise ValueError(f"einsum: '...' is not supported, got {subscripts!r}")
        inputs, _, output = subscripts.replace(" ", "").partition("->")
        self.specs = inputs.split(",")
        if "->" not in subscripts:  # implicit: the indices that appear once, in order
            letters = "".join(self.specs)
            output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        self.output = output

    def forward(self, *operands):
        if len(operands) != len(self.specs):
            raise ValueError(f"einsum: {len(self.specs)} operands in the subscripts, got {len(operands)}")
        for spec, a in zip(self.specs, operands):
            if len(spec) != a.ndim or len(set(spec)) != len(spec):
                raise ValueError(f"einsum: subscripts {spec!r} for an operand of shape {tuple(a.shape)} (one letter "
                                 "per axis; repeated letters in one operand are not supported)")
        if self.backend.kind == "cuda" and capturing() and self._contracts():
            raise CaptureError(
                f"einsum({','.join(self.specs)}->{self.output}) inside a step captured on a GPU: CuPy's einsum contracts "
                "through its cuBLAS bindings, which refuse to run while a stream captures; write the product with "
                "matmul (@), or run the step eagerly (gpugrad.compile(fn, enabled=False))")
        self.saved = operands
        result = self.backend.xp.einsum(",".join(self.specs) + "->" + self.output, *[working(a) for a in operands])
        return result.astype(operands[0].dtype, copy=False)  # float16 and bfloat16 computed in float32

    def _contracts(self) -> bool:
        """Whether the forward or a gradient's einsum sums over a letter that two operands share (CuPy: a GEMM)."""
        def contracts(specs, output):
            return any(c not in output and sum(c in s for s in specs) > 1 for c in set("".join(specs)))
        backward = [[self.output] + self.specs[:i] + self.specs[i + 1:] for i in range(len(self.specs))]
        return contracts(self.specs, self.output) or any(contracts(specs, spec) for specs, spec in
                                                         zip(backward, self.specs))

    def backward(self, grad_output):
        xp, grads = self.backend.xp, []
        sizes = {}  # each letter's size after broadcasting (an operand may hold 1 where another holds n)
        for spec, a in zip(self.specs, self.saved):
            for c, n in zip(spec, a.shape):
                sizes[c] = max(sizes.get(c, 1), n)
        for i, spec in enumerate(self.specs):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [(s, a) for j, (s, a) in enumerate(zip(self.specs, self.saved)) if j != i]
            known = set(self.output).union(*[set(s) for s, _ in others])
            kept = "".join(c for c in spec if c in known)
            partial = xp.einsum(",".join([self.output] + [s for s, _ in others]) + "->" + kept, working(grad_output),
                                *[working(a) for _, a in others])
            shape = [partial.shape[kept.index(c)] if c in kept else 1 for c in spec]
            full = xp.broadcast_to(partial.reshape(shape), [sizes[c] for c in spec])
            grads.append(sum_to(full, self.saved[i].shape).astype(self.saved[i].dtype, copy=True))  # broadcast: summed
        return tuple(grads)


_PRECISIONS = ("highest", "high")


@contextlib.contextmanager
def matmul_precision(precision):
    """``set_matmul_precision(precision)`` inside the block (None: unchanged), the setting before it restored after."""
    previous = Backend.matmul_precision
    if precision:
        set_matmul_precision(precision)
    try:
        yield
    finally:
        if precision:
            set_matmul_precision(previous)


def set_matmul_precision(precision: str) -> None:
    """float32 GEMMs on the GPU: "highest" (default, full float32) or "high" (TF32 tensor cores).

    The CPU always computes float32 GEMMs in float32.
    """
    if precision not in _PRECISIONS:
        raise ValueError(f"set_matmul_precision: expected one of {_PRECISIONS}, got {precision!r}")
    Backend.matmul_precision = precision
