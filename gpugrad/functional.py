"""``gpugrad.functional`` (import as ``F``): activations, losses and tensor-combining functions."""
from __future__ import annotations

import math

import numpy as np

from . import autograd
from .autograd import check_values
from .backend import is_host_array
from .amp import _cast, is_autocast_enabled
from .ops import activation as act
from .ops import arith, indexing, matmul, normalization, shape
from .ops.arith import where  # noqa: F401 -- gpugrad.where, F.where
from .dtypes import is_float
from .ops.loss import MSE, BinaryCrossEntropy, CrossEntropy, _check_range, check_labels
from .function import check_device
from .tensor import Tensor, as_tensor_like

__all__ = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "silu", "softplus", "softmax", "log_softmax",
           "maximum", "minimum", "maxout", "linear", "concatenate", "cat", "stack", "where", "mse_loss", "cross_entropy",
           "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "l1_loss", "smooth_l1_loss",
           "huber_loss", "normalize", "svm_loss", "dropout", "layer_norm", "batch_norm", "embedding", "pad", "one_hot",
           "einsum"]


def sigmoid(x):
    """sigma(x) = 1 / (1 + exp(-x)), with full relative accuracy in both tails. dx = dy * y * (1 - y)."""
    return act.Elementwise("sigmoid")(x)


def tanh(x):
    """tanh(x). dx = dy * (1 - y^2)."""
    return act.Elementwise("tanh")(x)


def relu(x):
    """max(0, x). dx = dy * (y > 0), so relu'(0) = 0; relu(NaN) is NaN."""
    return act.ReLU()(x)


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope * x otherwise (the lecture's max(0.1x, x) is slope 0.1)."""
    return act.Elementwise("leaky_relu", negative_slope)(x)


def elu(x, alpha=1.0):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return act.Elementwise("elu", alpha)(x)


def _axis(axis, dim):
    return axis if dim is None else dim  # numpy's axis= or PyTorch's dim=


def softmax(x, axis=-1, *, dim=None):
    """exp(x - max) / sum(exp(x - max)) along ``axis`` (or ``dim``)."""
    return act.Softmax(_axis(axis, dim))(x)


def log_softmax(x, axis=-1, *, dim=None):
    """x - max - log(sum(exp(x - max))) along ``axis`` (or ``dim``); stable for huge inputs."""
    return act.LogSoftmax(_axis(axis, dim))(x)


def maximum(a, b):
    """Elementwise max with broadcasting; on ties each input gets half the gradient."""
    return arith.Maximum()(a, b)


def minimum(a, b):
    """Elementwise min with broadcasting; on ties each input gets half the gradient."""
    return arith.Minimum()(a, b)


def maxout(z, pieces: int):
    """Max over consecutive groups of ``pieces`` along the last axis: (..., K*pieces) -> (..., K)."""
    if pieces < 1 or z.shape[-1] % pieces:
        raise ValueError(f"maxout: last dimension {z.shape[-1]} of shape {z.shape} is not a multiple of pieces={pieces}")
    return z.reshape(*z.shape[:-1], z.shape[-1] // pieces, pieces).max(axis=-1)


def linear(x, weight, bias=None, activation=None, **param):
    """act(x @ weight.T + bias), weight shaped (out_features, in_features).

    ``activation``: None or any name of ``ACTIVATIONS`` ("relu", "sigmoid", "tanh", "leaky_relu",
    "elu"), with its parameter by name (``negative_slope=0.1``, ``alpha=0.5``; default as in
    ``leaky_relu`` and ``elu``). One GEMM, then bias + activation in one fused pass (a CUDA kernel
    on the GPU); backward reuses the saved output.
    """
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return matmul.Linear(activation, act.keyword_param(activation, param, "linear"))(*inputs)


def _sequence(tensors, op):
    if isinstance(tensors, Tensor) or not hasattr(tensors, "__iter__"):
        raise TypeError(f"{op}: expected a sequence of tensors, got {type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors, got an empty one")
    return tensors


def concatenate(tensors, axis=0, *, dim=None):
    """Join tensors along an existing axis; mixed dtypes promote as in PyTorch (``cat`` is the same)."""
    return shape.Concatenate(_axis(axis, dim))(*_sequence(tensors, "concatenate"))


cat = concatenate


def stack(tensors, axis=0, *, dim=None):
    """Join same-shaped tensors along a new axis; mixed dtypes promote as in PyTorch."""
    return shape.Stack(_axis(axis, dim))(*_sequence(tensors, "stack"))


def mse_loss(pred, target, reduction="mean"):
    """(pred - target)^2, averaged ("mean"), summed ("sum") or kept ("none")."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"mse_loss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    pred, target = as_tensor_like((pred, target), "mse_loss")
    if not is_float(pred.dtype):
        raise TypeError(f"mse_loss: predictions must be floating point, got dtype {pred.dtype}; convert with .float()")
    if pred.data.shape != target.data.shape:
        raise ValueError(f"mse_loss: pred of shape {pred.shape} and target of shape {target.shape} differ")
    return MSE(reduction)(pred, target)


def _labels(labels, like: Tensor, op: str, role="labels", of="logits"):
    """The labels' (or indices') array on ``like``'s device: a tensor on another device is refused as PyTorch does
    (a CPU label tensor for CUDA logits would be copied at every step, and cannot be inside a captured one);
    arrays and lists are moved."""
    if isinstance(labels, Tensor):
        check_device(op, role, labels, like.backend, of=of, plural=True)
        return labels.data
    data = np.asarray(labels) if not hasattr(labels, "__cuda_array_interface__") else labels
    if like.device != "cpu" and is_host_array(data):
        data = like.backend.asarray(data)
    return data


def cross_entropy(logits, labels, weight=None, ignore_index=None, reduction="mean", label_smoothing=0.0):
    """-log softmax(logits)[n, labels[n]], averaged over the batch ("mean"), summed or kept ("none"), as PyTorch's.

    ``logits`` (N, C); ``labels`` (N,) integer classes, or (N, C) class probabilities. ``weight`` (C,) weighs each
    class (the mean divides by the weights of the rows taken); rows whose label is ``ignore_index`` count for
    nothing (given explicitly: PyTorch's default -100 is not assumed, so a label out of [0, C) is refused, never
    skipped silently); ``label_smoothing`` mixes the target with the uniform distribution. The plain case (integer
    labels, none of these) is one fused op whose gradient is (softmax - onehot) / N.
    """
    _reduction(reduction, "cross_entropy")
    if isinstance(label_smoothing, bool) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    soft = isinstance(labels, Tensor) and is_float(labels.dtype)
    if not soft and weight is None and ignore_index is None and not label_smoothing:
        if reduction == "mean":
            return CrossEntropy(_labels(labels, logits, "cross_entropy"))(logits)
        return nll_loss(log_softmax(logits, dim=1), labels, reduction=reduction)
    (logits,) = _float32("cross_entropy", logits)
    log_probs = log_softmax(logits, dim=1)
    if soft:
        if labels.shape != logits.shape:
            raise ValueError(f"cross_entropy: probability targets of shape {labels.shape} for logits of shape "
                             f"{logits.shape}")
        target = labels if not label_smoothing else labels * (1 - label_smoothing) + label_smoothing / logits.shape[1]
        terms = log_probs * target
        return _reduce(-(terms if weight is None else terms * weight).sum(1), reduction)
    return _class_nll(log_probs, labels, weight, ignore_index, reduction, label_smoothing, "cross_entropy")


# -- losses built from ops (their gradients are the ops'); float32 under autocast, as PyTorch ------------

def _reduction(reduction, op):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss, reduction):
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _float32(op, *tensors):
    """The loss's inputs as tensors on one device; float16 / bfloat16 ones in float32 under autocast."""
    tensors = as_tensor_like(tensors, op)
    if not is_float(tensors[0].dtype):
        raise TypeError(f"{op}: the input must be floating point, got dtype {tensors[0].dtype}; convert with .float()")
    return tuple(_cast(t, np.dtype(np.float32)) for t in tensors) if is_autocast_enabled() else tensors


def nll_loss(log_probs, labels, weight=None, ignore_index=None, reduction="mean"):
    """-log_probs[n, labels[n]] (``log_probs`` (N, C), e.g. from log_softmax), reduced; ``weight`` and
    ``ignore_index`` as in ``cross_entropy``."""
    _reduction(reduction, "nll_loss")
    (log_probs,) = _float32("nll_loss", log_probs)
    if weight is None and ignore_index is None:
        labels = _labels(labels, log_probs, "nll_loss", of="log-probabilities")
        check_labels(log_probs.shape, labels, "nll_loss")
        picked = indexing.gather(log_probs, 1, labels.reshape(-1, 1), in_range=True).reshape(-1)  # labels checked
        return _reduce(-picked, reduction)
    return _class_nll(log_probs, labels, weight, ignore_index, reduction, 0.0, "nll_loss")


def _class_nll(log_probs, labels, weight, ignore_index, reduction, smoothing, op):
    """PyTorch's weighted negative log-likelihood of class labels, rows of ``ignore_index`` left out, with label
    smoothing: (1 - s) nll + s / C * (-sum_c w_c log p_c); "mean" divides both by the weights of the rows taken."""
    if weight is not None and not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a tensor of one weight per class, got {weight!r} (pass reduction= "
                        "by name: PyTorch's third argument is weight)")
    data = _labels(labels, log_probs, op, of="logits" if op == "cross_entropy" else "log-probabilities")
    check_labels(log_probs.shape, data, op, skip_range=True)
    classes, xp = log_probs.shape[1], log_probs.backend.xp
    keep = None if ignore_index is None else data != ignore_index
    safe = data if keep is None else xp.where(keep, data, 0)
    if data.size:
        check_values(lambda: _check_range(log_probs.shape, safe, op))
    if weight is not None:
        weight = as_tensor_like((weight, log_probs), op)[0]
        if weight.shape != (classes,):
            raise ValueError(f"{op}: weight of shape {weight.shape} for {classes} classes")
    taken = log_probs._wrap(xp.ones(data.shape, log_probs.dtype)) if weight is None else weight[safe]
    if keep is not None:
        taken = taken * log_probs._wrap(keep.astype(log_probs.dtype))
    loss = -indexing.gather(log_probs, 1, safe.reshape(-1, 1), in_range=True).reshape(-1) * taken
    if smoothing:
        spread = -(log_probs if weight is None else log_probs * weight).sum(1)
        spread = spread if keep is None else spread * log_probs._wrap(keep.astype(log_probs.dtype))
        loss = (1 - smoothing) * loss + smoothing / classes * spread
    return loss.sum() / taken.sum() if reduction == "mean" else _reduce(loss, reduction)


def binary_cross_entropy_with_logits(logits, target, weight=None, reduction="mean", pos_weight=None):
    """-[w_pos y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] from logits, as (1 - y) x + w_pos softplus(-x)
    (finite for any x; the gradient is sigmoid(x) - y where w_pos = 1), times ``weight``, reduced."""
    _reduction(reduction, "binary_cross_entropy_with_logits")
    logits, target = _float32("binary_cross_entropy_with_logits", logits, target)
    if logits.shape != target.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: logits of shape {logits.shape} and target of shape "
                         f"{target.shape} differ")
    scale = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * logits + scale * softplus(-logits, threshold=math.inf)  # exact in both tails
    return _reduce(loss if weight is None else loss * weight, reduction)


def binary_cross_entropy(probs, target, weight=None, reduction="mean"):
    """-[y log p + (1 - y) log(1 - p)] with each log at least -100 (PyTorch's), times ``weight``, reduced."""
    _reduction(reduction, "binary_cross_entropy")
    probs, target = _float32("binary_cross_entropy", probs, target)
    if probs.shape != target.shape:
        raise ValueError(f"binary_cross_entropy: probs of shape {probs.shape} and target of shape {target.shape} differ")
    loss = BinaryCrossEntropy()(probs, target)
    return _reduce(loss if weight is None else loss * weight, reduction)


def l1_loss(pred, target, reduction="mean"):
    _reduction(reduction, "l1_loss")
    pred, target = _float32("l1_loss", pred, target)
    return _reduce((pred - target).abs(), reduction)


def huber_loss(pred, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), d = pred - target; reduced."""
    _reduction(reduction, "huber_loss")
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta!r}")
    pred, target = _float32("huber_loss", pred, target)
    diff = pred - target
    size = diff.abs()
    return _reduce(where(size < delta, 0.5 * diff * diff, delta * (size - 0.5 * delta)), reduction)


def smooth_l1_loss(pred, target, reduction="mean", beta=1.0):
    """Huber's loss divided by ``beta`` (the L1 loss for beta = 0), as PyTorch's."""
    if not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta!r}")
    if beta == 0:
        return l1_loss(pred, target, reduction)
    return huber_loss(pred, target, reduction, delta=beta) / beta


def normalize(x, p=2.0, dim=1, eps=1e-12):
    """x divided by its p-norm over ``dim`` (at least ``eps``)."""
    (x,) = _float32("normalize", x)
    return x / x.norm(p=p, dim=dim, keepdim=True).clamp(min=eps)


def svm_loss(scores, labels, margin=1.0):
    """Multiclass SVM loss: mean over n of sum over j != y_n of max(0, s_j - s_y + margin)."""
    labels = _labels(labels, scores, "svm_loss", of="scores")
    if not is_float(scores.dtype):
        raise TypeError(f"svm_loss: scores must be floating point, got dtype {scores.dtype}; convert with .float()")
    check_labels(scores.shape, labels, "svm_loss")
    xp = scores.backend.xp
    n, classes = scores.shape
    rows = xp.arange(n)
    correct = scores[rows, labels].reshape(n, 1)
    margins = relu(scores - correct + margin)
    others = xp.ones((n, classes), dtype=scores.dtype)
    others[rows, labels] = 0  # j != y_n
    return (margins * others).sum() / (n if n else float("nan"))  # NaN: a mean over an empty batch


def gelu(x, approximate="none"):
    """x * Phi(x) (Phi the normal CDF), or with ``approximate="tanh"``
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return act.FromInput("gelu", approximate=approximate)(x)


def silu(x):
    """x * sigmoid(x) (swish)."""
    return act.FromInput("silu")(x)


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold; computed without overflow."""
    return act.FromInput("softplus", beta=beta, threshold=threshold)(x)


def dropout(x, p=0.5, training=True, activation=None, **param):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) while ``training``;
    the mask comes from the device's seeded generator (``gpugrad.manual_seed``). ``activation`` (a name
    of the vocabulary, with its parameter) is applied first, in the same op: one fused pass on a GPU."""
    p = act.dropout_probability(p)
    value = act.keyword_param(activation, param, "dropout")
    if activation is not None and (not training or p in (0, 1)):
        x = act.Elementwise(activation, next(iter(param.values()), None))(x)
    if not training or p == 0:
        return x
    return x * 0 if p == 1 else act.Dropout(p, activation, value)(x)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias, statistics over the trailing ``normalized_shape``."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(shape):]) != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: input of shape {x.shape} does not end in normalized_shape {shape}")
    lead = x.ndim - len(shape)
    fn = normalization.Normalize(range(lead, x.ndim), eps, (1,) * lead + shape, range(lead))
    return fn(x) if weight is None else fn(x, weight, bias)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization over (N, C) or (N, C, L) input, per channel C. With ``training``, the
    batch's statistics, and ``running_mean`` / ``running_var`` (tensors, or None) move towards them by
    ``momentum`` (the unbiased variance, as PyTorch); else the running statistics."""
    if x.ndim not in (2, 3):
        raise ValueError(f"batch_norm: expected (N, C) or (N, C, L) input, got shape {x.shape}")
    axes = (0,) if x.ndim == 2 else (0, 2)
    param_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if not training:
        if running_mean is None:
            raise ValueError("batch_norm: eval mode needs running_mean and running_var")
        fn = normalization.Normalize(axes, eps, param_shape, axes, (running_mean.data, running_var.data))
    else:
        count = x.numel() // x.shape[1]
        if count < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, got input of shape {x.shape}")
        fn = normalization.Normalize(axes, eps, param_shape, axes)
    y = fn(x) if weight is None else fn(x, weight, bias)
    if training and running_mean is not None:
        mean, var = (s.reshape(-1).astype(running_mean.dtype) for s in fn.batch_statistics)
        with autograd.no_grad():
            running_mean.mul_(1 - momentum).add_(Tensor._make(mean * momentum, False))
            running_var.mul_(1 - momentum).add_(Tensor._make(var * (momentum * count / (count - 1)), False))
    return y


def embedding(indices, weight, padding_idx=None):
    """Rows of ``weight`` (num_embeddings, dim) at integer ``indices`` of any shape."""
    index = _labels(indices, weight, "embedding", role="indices", of="weight")
    return shape.Embedding(index, padding_idx)(weight)


def pad(x, pad, value=0.0):
    """PyTorch's ``F.pad``: ``pad`` = (left, right) for the last axis, then for the one before, ..."""
    return indexing.Pad(pad, value)(x)


def one_hot(labels, num_classes=-1):
    """int64 (..., num_classes) with a 1 at each label."""
    return indexing.one_hot(labels if isinstance(labels, Tensor) else Tensor(np.asarray(labels)), num_classes)


def einsum(subscripts, *operands):
    """numpy's einsum (no "..."), differentiable in every operand: ``einsum("bij,bjk->bik", a, b)``."""
    return matmul.Einsum(subscripts)(*operands)
