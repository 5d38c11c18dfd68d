"""Losses. Cross-entropy is one fused op (softmax + log + NLL, and dlogits in the same pass)."""
from __future__ import annotations

import numpy as np

from ..autograd import Function, check_values
from ..backend import is_host_array
from ..dtypes import is_float, working


def check_labels(logits_shape, labels, op, skip_range=False):
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be integer class indices, got dtype {labels.dtype}")
    if len(logits_shape) != 2 or labels.shape != (logits_shape[0],):
        raise ValueError(f"{op}: expected scores of shape (N, C) and labels of shape (N,), "
                         f"got {tuple(logits_shape)} and {tuple(labels.shape)}")
    if labels.size and not skip_range:
        check_values(lambda: _check_range(logits_shape, labels, op))


def _check_range(logits_shape, labels, op):
    low, high = int(labels.min()), int(labels.max())  # NOTE: two reductions, 3x faster than two compares + any
    if low < 0 or high >= logits_shape[1]:
        raise ValueError(f"{op}: labels must lie in [0, {logits_shape[1]}) for {logits_shape[1]} classes, "
                         f"got values from {low} to {high}")


def check_float(array, op, what="scores"):
    if not is_float(array.dtype):
        raise TypeError(f"{op}: {what} must be floating point, got dtype {array.dtype}; convert with .float()")


def softmax_xent(xp, logits, labels):
    """Mean cross-entropy over rows of (N, C) logits, through log-softmax with the row max subtracted,
    and dlogits = (softmax - onehot) / N, from one exp of the logits (float16 computed in float32)."""
    n = logits.shape[0]
    work = working(logits)
    shifted = work - work.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    rows = xp.arange(n)
    loss = (xp.log(total[:, 0]) - shifted[rows, labels]).sum() / (n if n else np.nan)  # NaN: a mean of nothing
    exp /= total
    exp[rows, labels] -= 1
    exp /= max(n, 1)
    return loss.astype(logits.dtype), exp.astype(logits.dtype, copy=False)


class CrossEntropy(Function):
    """Mean over the batch of -log softmax(logits)[label]; saves only dlogits. An empty batch gives NaN
    (a mean over nothing, as in PyTorch) and an empty gradient."""
    amp = "float32"
    saves_inputs = ()

    def __init__(self, labels):
        self.labels = labels

    def forward(self, logits):
        check_float(logits, "cross_entropy", "logits")
        kernels = self.backend.kernels
        fused = kernels is not None and kernels.softmax_xent_applies(logits, self.labels)
        # NOTE: the kernel turns an out-of-range label into a NaN loss instead: checking on the host
        # would stall it on the device every step.
        check_labels(logits.shape, self.labels, "cross_entropy", skip_range=fused)
        loss, dlogits = kernels.softmax_xent(logits, self.labels) if fused else \
            softmax_xent(self.backend.xp, logits, self.labels)
        self.saved = dlogits
        return loss

    def backward(self, grad_output):
        if grad_output is self.backend.unit_gradient(grad_output.shape, grad_output.dtype) and not self.retaining:
            return self.saved  # loss.backward(): dlogits as they are, no multiply by one
        return self.saved * grad_output


class MSE(Function):
    """(pred - target)^2 summed, averaged or kept: one op; saves only the difference. The mean over
    zero elements is NaN, as in PyTorch."""
    amp = "float32"
    promotes = "same"
    saves_inputs = ()

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, pred, target):
        check_float(pred, "mse_loss", "predictions")
        diff = pred - target
        self.saved = diff
        if self.reduction == "none":
            return diff * diff
        flat = working(diff.reshape(-1))  # float16 accumulated in float32
        total = flat @ flat  # NOTE: a dot product of the flat difference with itself: one pass, no squared array
        if self.reduction == "mean":
            total = total / (diff.size if diff.size else np.nan)
        return self.backend.xp.asarray(total, dtype=diff.dtype)

    def backward(self, grad_output):
        diff = self.saved
        scale = 2.0 / max(diff.size, 1) if self.reduction == "mean" else 2.0
        grad = diff * (grad_output * diff.dtype.type(scale))
        return (grad if self.needs_input_grad[0] else None), (-grad if self.needs_input_grad[1] else None)


class BinaryCrossEntropy(Function):
    """-(y log p + (1 - y) log(1 - p)) elementwise, each log at least -100 (PyTorch's clamp: finite at p = 0
    and 1); dp = (p - y) / max(p (1 - p), 1e-12), dy = log(1 - p) - log p. Probabilities outside [0, 1]
    raise (checked on the CPU; on a GPU the check would stall the device)."""
    amp = "float32"
    promotes = "same"
    saves_inputs = ()

    def forward(self, p, y):
        check_float(p, "binary_cross_entropy", "probabilities")
        xp = self.backend.xp
        if is_host_array(p) and p.size:  # a capture's recording module is not np: test the array
            check_values(lambda: _check_probabilities(p))
        with np.errstate(divide="ignore"):
            log_p, log_q = xp.maximum(xp.log(p), -100), xp.maximum(xp.log(1 - p), -100)
        self.saved = (p, y, log_p, log_q)
        return -(y * log_p + (1 - y) * log_q)

    def backward(self, grad_output):
        p, y, log_p, log_q = self.saved
        xp = self.backend.xp
        dp = grad_output * (p - y) / xp.maximum(p * (1 - p), p.dtype.type(1e-12)) if self.needs_input_grad[0] else None
        return dp, (grad_output * (log_q - log_p) if self.needs_input_grad[1] else None)


def _check_probabilities(p):
    if bool((p < 0).any()) or bool((p > 1).any()) or bool(np.isnan(p).any()):
        raise ValueError(f"binary_cross_entropy: probabilities must lie in [0, 1], got values from {np.nanmin(p)} to "
                         f"{np.nanmax(p)}{' and NaN' if np.isnan(p).any() else ''}")
