"""What some of gpugrad's kernels compute, in numpy, read from and written to the memory their pointer arguments
name (as a kernel reads it: ``n`` elements from the pointer, whatever the array's shape or strides): the
activations, the linear layer's bias + activation epilogue, softmax + cross-entropy and layer norm, written
from kernels/*.cu (the functors of common.cuh), not from gpugrad's Python formulas. With them the stand-in
checks a launch's glue by its result: which buffer is read or written, the counts and sizes passed. The
optimizer, scaler and dropout kernels stay no-ops here."""
import ctypes

import numpy as np


def _raw(array, count, dtype=None):
    """``count`` elements from where ``array``'s data starts (a kernel's view of the pointer), or None for null."""
    if not isinstance(array, np.ndarray):
        return None  # a null pointer (uint64 0)
    dtype = np.dtype(dtype or array.dtype)
    memory = (ctypes.c_char * (count * dtype.itemsize)).from_address(array.ctypes.data)
    return np.frombuffer(memory, dtype=dtype, count=count)


def _compute(dtype):
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _forward(code, x, p):
    with np.errstate(over="ignore", invalid="ignore"):
        if code == 1:
            return np.where((x > 0) | (x != x), x, 0)
        if code == 2:
            return 1 / (1 + np.exp(-x))
        if code == 3:
            return np.tanh(x)
        if code == 4:
            return np.where(x > 0, x, x * x.dtype.type(p))
        if code == 5:
            return np.where(x > 0, x, np.expm1(np.fmin(x, 0)) * x.dtype.type(p))
    return x


def _backward(code, y, g, p):
    if code == 1:
        return g * np.where(y > 0, 1, 0).astype(y.dtype)
    if code == 2:
        return (1 - y) * y * g
    if code == 3:
        return g * (1 - y * y)
    if code == 4:
        return np.where(y > 0, g, g * y.dtype.type(p))
    if code == 5:
        return np.where(y > 0, g, g * (y + y.dtype.type(p)))
    return g


CODES = {"relu": 1, "sigmoid": 2, "tanh": 3, "leaky_relu": 4, "elu": 5}


def activation(family, args):
    name, direction = family.rsplit("_", 1)
    code = CODES[name]
    if direction == "fwd":
        x, y, n, p = args
        compute = _compute(x.dtype)
        _raw(y, int(n))[...] = _forward(code, _raw(x, int(n)).astype(compute), float(p))
    else:
        y, gy, gx, n, p = args
        compute = _compute(y.dtype)
        _raw(gx, int(n))[...] = _backward(code, _raw(y, int(n)).astype(compute), _raw(gy, int(n)).astype(compute),
                                          float(p))


def bias_act_fwd(args):
    z, bias, rows, cols, has_bias, code, p = args
    rows, cols, compute = int(rows), int(cols), _compute(z.dtype)
    out = _raw(z, rows * cols).reshape(rows, cols)
    value = out.astype(compute)
    if has_bias:
        value = value + _raw(bias, cols).astype(compute)
    out[...] = _forward(int(code), value, float(p))


def _grad_pre(y, gy, rows, cols, code, p):
    compute = _compute(y.dtype)
    return _backward(int(code), _raw(y, rows * cols).astype(compute).reshape(rows, cols),
                     _raw(gy, rows * cols).astype(compute).reshape(rows, cols), float(p))


def bias_act_bwd(args):
    y, gy, grad_pre, partial, rows, cols, rows_per_chunk, code, p, vectorized = args
    rows, cols, step = int(rows), int(cols), int(rows_per_chunk)
    pre = _grad_pre(y, gy, rows, cols, code, p)
    _raw(grad_pre, rows * cols).reshape(rows, cols)[...] = pre
    chunks = -(-rows // step)
    stored = pre.astype(y.dtype).astype(partial.dtype)  # the kernel sums what it stored
    _raw(partial, chunks * cols).reshape(chunks, cols)[...] = [stored[c * step:(c + 1) * step].sum(axis=0)
                                                               for c in range(chunks)]


def column_sum(args):
    partial, out, chunks, cols = args
    _raw(out, int(cols))[...] = _raw(partial, int(chunks) * int(cols)).reshape(int(chunks), int(cols)).sum(axis=0)


def bias_act_bwd_small(args):
    y, gy, grad_pre, grad_bias, rows, cols, code, p = args
    rows, cols = int(rows), int(cols)
    pre = _grad_pre(y, gy, rows, cols, code, p)
    _raw(grad_pre, rows * cols).reshape(rows, cols)[...] = pre
    _raw(grad_bias, cols)[...] = pre.astype(y.dtype).astype(_compute(y.dtype)).sum(axis=0)


def softmax_xent_fwd(args):
    logits, labels, row_loss, dlogits, rows, cols, loss, blocks_done = args
    rows, cols = int(rows), int(cols)
    accum = row_loss.dtype
    x = _raw(logits, rows * cols).reshape(rows, cols).astype(accum)
    label = _raw(labels, rows).astype(np.int64)
    m = x.max(axis=1, keepdims=True)
    s = np.exp(x - m).sum(axis=1, keepdims=True)
    grad = (np.exp(x - m) / s - (np.arange(cols) == label[:, None])) / rows
    each = np.log(s[:, 0]) - (x[np.arange(rows), np.clip(label, 0, cols - 1)] - m[:, 0])
    bad = (label < 0) | (label >= cols)
    grad[bad], each[bad] = np.nan, np.nan
    _raw(dlogits, rows * cols).reshape(rows, cols)[...] = grad
    _raw(row_loss, rows)[...] = each
    _raw(loss, 1)[...] = each.sum() / rows
    _raw(blocks_done, 1)[...] = 0


def layer_norm_fwd(args):
    x, w, b, y, xhat, rstd, rows, cols, eps = args
    rows, cols = int(rows), int(cols)
    compute = xhat.dtype
    v = _raw(x, rows * cols).reshape(rows, cols).astype(compute)
    mean = v.sum(axis=1, keepdims=True) / compute.type(cols)
    inv = 1 / np.sqrt(((v - mean) ** 2).sum(axis=1, keepdims=True) / compute.type(cols) + compute.type(eps))
    h = (v - mean) * inv
    _raw(xhat, rows * cols).reshape(rows, cols)[...] = h
    weight, bias = _raw(w, cols), _raw(b, cols)
    _raw(y, rows * cols).reshape(rows, cols)[...] = h if weight is None else \
        h * weight.astype(compute) + bias.astype(compute)
    _raw(rstd, rows)[...] = inv[:, 0]


def layer_norm_bwd(args):
    dy, xhat, rstd, w, dx, rows, cols = args
    rows, cols = int(rows), int(cols)
    compute = xhat.dtype
    d = _raw(dy, rows * cols).reshape(rows, cols).astype(compute)
    weight = _raw(w, cols)
    if weight is not None:
        d = d * weight.astype(compute)
    h = _raw(xhat, rows * cols).reshape(rows, cols)
    mean_d = d.sum(axis=1, keepdims=True) / compute.type(cols)
    mean_dh = (d * h).sum(axis=1, keepdims=True) / compute.type(cols)
    _raw(dx, rows * cols).reshape(rows, cols)[...] = _raw(rstd, rows)[:, None] * (d - mean_d - h * mean_dh)


KERNELS = {"bias_act_fwd": bias_act_fwd, "bias_act_bwd": bias_act_bwd, "column_sum": column_sum,
           "bias_act_bwd_small": bias_act_bwd_small, "softmax_xent_fwd": softmax_xent_fwd,
           "layer_norm_fwd": layer_norm_fwd, "layer_norm_bwd": layer_norm_bwd}


def run(expression, args):
    """Compute what kernel ``expression`` (e.g. "sigmoid_fwd<float>") does with ``args``, where emulated."""
    family = expression.split("<")[0]
    if family in KERNELS:
        KERNELS[family](args)
    elif family.rsplit("_", 1)[0] in CODES:
        activation(family, args)
