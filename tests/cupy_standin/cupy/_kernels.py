"""What gpugrad's kernels compute, in numpy, read from and written to the memory their pointer arguments name
(as a kernel reads it: ``n`` elements from the pointer, whatever the array's shape or strides): every kernel
of kernels/*.cu (activations, the linear layer's epilogue, softmax + cross-entropy, layer norm, dropout's
counter-based draws, the optimizer steps, the loss scaler), written from the .cu files, not from gpugrad's
Python formulas. With them the stand-in checks a launch's glue by its result: which buffer is read or
written, the counts, sizes and slots passed."""
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


def _flag(pointer):
    value = _raw(pointer, 1)
    return value is not None and value[0] != 0


def _slots(args, grid):
    """(param, grad, a, b, n, step) of the slots a multi-tensor launch covers (blockIdx.y < grid's y), and the rest."""
    return [args[6 * i:6 * i + 6] for i in range(grid[1])], args[48:]


def _gradient(grad, n, scale, compute):
    g = _raw(grad, n)
    if not isinstance(scale, np.ndarray):
        return g.astype(compute)
    g[...] = g.astype(compute) * compute.type(np.float32(1) / _raw(scale, 1)[0])  # written back, rounded to T
    return g.astype(compute)


def sgd_step(args, grid):
    slots, (first_mask, scalars, nesterov, found_inf, scale) = _slots(args, grid)
    if _flag(found_inf):
        return
    lr, momentum, dampening, weight_decay = _raw(scalars, 4)
    for i, (param, grad, a, b, n, step) in enumerate(slots):
        n, compute = int(n), _compute(param.dtype)
        p = _raw(param, n)
        value, d = p.astype(compute), _gradient(grad, n, scale, compute)
        if weight_decay:
            d = d + compute.type(weight_decay) * value
        if momentum:
            buf = _raw(a, n)
            m = d if (int(first_mask) >> i) & 1 else compute.type(momentum) * buf.astype(compute) + \
                compute.type(1.0 - dampening) * d
            buf[...] = m
            d = d + compute.type(momentum) * m if nesterov else m
        p[...] = value - compute.type(lr) * d


def adam_step(args, grid):
    slots, (first_mask, scalars, decoupled, found_inf, scale) = _slots(args, grid)
    if _flag(found_inf):
        return
    lr, beta1, beta2, eps, weight_decay = _raw(scalars, 5)
    for param, grad, a, b, n, step in slots:
        n, compute = int(n), _compute(param.dtype)
        t = float(_raw(step, 1)[0])
        step_size, bias2_sqrt = lr / (1 - beta1 ** t), np.sqrt(1 - beta2 ** t)
        p, m_buf, v_buf = _raw(param, n), _raw(a, n), _raw(b, n)
        value, g = p.astype(compute), _gradient(grad, n, scale, compute)
        if weight_decay:
            if decoupled:
                value = value * compute.type(1.0 - lr * weight_decay)
            else:
                g = g + compute.type(weight_decay) * value
        m = compute.type(beta1) * m_buf.astype(compute) + compute.type(1.0 - beta1) * g
        v = compute.type(beta2) * v_buf.astype(compute) + compute.type(1.0 - beta2) * (g * g)
        m_buf[...], v_buf[...] = m, v
        p[...] = value - compute.type(step_size) * (m / (np.sqrt(v) / compute.type(bias2_sqrt) + compute.type(eps)))


def count_steps(args, grid):
    *steps, count, found_inf = args
    if not _flag(found_inf):
        for step in steps[:int(count)]:
            _raw(step, 1)[0] += 1


def unscale_check(args, grid):
    scale, found_inf, write = args[16:]
    inverse = np.float32(1) / _raw(scale, 1)[0]
    for i in range(grid[1]):
        grad, n = args[2 * i], int(args[2 * i + 1])
        g = _raw(grad, n)
        value = g.astype(_compute(g.dtype)) * _compute(g.dtype).type(inverse)
        if not np.all(np.isfinite(value)):
            _raw(found_inf, 1)[0] = 1
        if write:
            g[...] = value


def update_scale(args, grid):
    scale, tracker, found_inf, growth, backoff, interval = args
    s, count = _raw(scale, 1), _raw(tracker, 1)
    if _raw(found_inf, 1)[0] != 0:
        s[0], count[0] = s[0] * np.float32(backoff), 0
        return
    successful = int(count[0]) + 1
    if successful == int(interval):
        grown = s[0] * np.float32(growth)
        if np.isfinite(grown):
            s[0] = grown
        successful = 0
    count[0] = successful


def _uniform01(seed, counters):
    """splitmix64(seed, counter) to 24 bits in [0, 1), as dropout.cu draws them."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15) * (counters + np.uint64(1))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(1 / 16777216)


def dropout_fwd(args, grid):
    x, y, scaled_mask, n, p, scale, state, code, act_param, activated = args
    n, compute = int(n), _compute(x.dtype)
    seed, offset = _raw(state, 2)
    keep = np.where(_uniform01(seed, offset + np.arange(n, dtype=np.uint64)) >= np.float32(p),
                    compute.type(scale), compute.type(0))
    _raw(scaled_mask, n)[...] = keep
    value = _raw(x, n).astype(compute)
    if int(code):
        out = _raw(activated, n)
        out[...] = _forward(int(code), value, float(act_param))  # rounded to T, as unfused
        value = out.astype(compute)
    _raw(y, n)[...] = value * keep


def dropout_advance(args, grid):
    state, n = args
    _raw(state, 2)[1] += np.uint64(int(n))


KERNELS = {"sgd_step": sgd_step, "adam_step": adam_step, "count_steps": count_steps, "unscale_check": unscale_check,
           "update_scale": update_scale, "dropout_fwd": dropout_fwd, "dropout_advance": dropout_advance}
KERNELS.update({"bias_act_fwd": bias_act_fwd, "bias_act_bwd": bias_act_bwd, "column_sum": column_sum,
           "bias_act_bwd_small": bias_act_bwd_small, "softmax_xent_fwd": softmax_xent_fwd,
           "layer_norm_fwd": layer_norm_fwd, "layer_norm_bwd": layer_norm_bwd})
_GRIDDED = {"sgd_step", "adam_step", "count_steps", "unscale_check", "update_scale", "dropout_fwd", "dropout_advance"}


def run(expression, grid, args):
    """Compute what kernel ``expression`` (e.g. "sigmoid_fwd<float>") does with ``args``, where emulated."""
    family = expression.split("<")[0]
    if family in _GRIDDED:
        KERNELS[family](args, tuple(grid) + (1,) * (3 - len(grid)))
    elif family in KERNELS:
        KERNELS[family](args)
    elif family.rsplit("_", 1)[0] in CODES:
        activation(family, args)
