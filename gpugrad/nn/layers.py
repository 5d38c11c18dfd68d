"""Layers, activation modules and loss modules."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..backend import get_backend
from ..ops.activation import Elementwise, activation_param, dropout_probability, keyword_param
from ..ops.shape import check_axis
from ..autograd import no_grad
from ..tensor import Tensor
from . import init
from .module import Module, Parameter, Sequential


def _number(layer, name, value, low=0.0, high=math.inf):
    """A real hyperparameter in [low, high], or an error naming the layer and the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            low <= value <= high):
        raise ValueError(f"{layer}: {name} must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _count(layer, name, value, minimum=1):
    """A size argument: an integer >= minimum, or an error naming the layer and the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{layer}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Linear(Module):
    """y = act(x @ weight.T + bias), weight (out_features, in_features), PyTorch's default initialisation:
    weight and bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).

    ``activation`` (None, or a name of ``gpugrad.ops.activation.ACTIVATIONS`` with its parameter,
    e.g. ``activation="leaky_relu", negative_slope=0.1``) asks for the fused layer: one GEMM, then
    bias + activation in one pass."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32, device=None,
                 activation=None, **param):
        super().__init__()
        in_features, out_features = _count("Linear", "in_features", in_features), _count("Linear", "out_features",
                                                                                         out_features)
        self.in_features, self.out_features = in_features, out_features
        self.activation, self.param = activation, param
        keyword_param(activation, param, "Linear")
        backend = get_backend(device)
        bound = 1 / math.sqrt(in_features)
        self.weight = Parameter(backend.xp.empty((out_features, in_features), dtype=dtype))
        init.uniform_(self.weight, -bound, bound)  # = kaiming_uniform_(a=sqrt(5)), PyTorch's default
        if bias:
            self.bias = Parameter(backend.xp.empty((out_features,), dtype=dtype))
            init.uniform_(self.bias, -bound, bound)
        else:
            self.bias = None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias, self.activation, **self.param)

    def fused_forward(self, x, following):
        """This layer and the activation module ``following`` as one op (what ``Sequential`` calls); None if
        ``following`` is not an activation module."""
        fusable = getattr(following, "fusable_activation", None)
        if self.activation is not None or fusable is None:
            return None
        activation, param = fusable
        return F.linear(x, self.weight, self.bias, activation, **param)

    def extra_repr(self):
        extra = f", activation={self.activation!r}" if self.activation else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}{extra}"


class _Activation(Module):
    """An activation of the vocabulary as a module; ``Sequential`` fuses it into a preceding Linear."""
    activation = ""

    def __init__(self, **param):
        super().__init__()
        self.param = param
        activation_param(self.activation, next(iter(param.values()), None))  # checks

    @property
    def fusable_activation(self):
        return self.activation, self.param

    def fused_forward(self, x, following):
        """This activation and a ``Dropout`` module in training mode as one op (what ``Sequential`` calls)."""
        if not isinstance(following, Dropout) or not following.training:
            return None
        return F.dropout(x, following.p, True, self.activation, **self.param)

    def forward(self, x):
        return Elementwise(self.activation, next(iter(self.param.values()), None))(x) if self.activation != "relu" \
            else F.relu(x)

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.param.items())


class Sigmoid(_Activation):
    activation = "sigmoid"


class Tanh(_Activation):
    activation = "tanh"


class ReLU(_Activation):
    activation = "relu"


class LeakyReLU(_Activation):
    activation = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        super().__init__(negative_slope=negative_slope)
        self.negative_slope = negative_slope


class ELU(_Activation):
    activation = "elu"

    def __init__(self, alpha=1.0):
        super().__init__(alpha=alpha)
        self.alpha = alpha


class Identity(Module):
    """Returns its input (a placeholder, e.g. for a layer switched off)."""

    def forward(self, x):
        return x


class Unflatten(Module):
    """Splits axis ``dim`` into ``unflattened_size`` (the inverse of ``Flatten``)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)) or not all(
                isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in unflattened_size):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of integers, got {unflattened_size!r}")
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        return x.unflatten(self.dim, self.unflattened_size)


class Flatten(Module):
    """Joins the axes start_dim .. end_dim into one (default: all but the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        start = check_axis(self.start_dim, x.ndim, "Flatten", x.shape)
        end = check_axis(self.end_dim, x.ndim, "Flatten", x.shape)
        if start > end:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} for an input of "
                             f"shape {x.shape}")
        joined = math.prod(x.shape[start:end + 1])
        return x.reshape(*x.shape[:start], joined, *x.shape[end + 1:])


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)


class Dropout(Module):
    """Zeroes elements with probability p in training mode (``model.train()``); the identity in eval mode."""

    def __init__(self, p=0.5):
        super().__init__()
        dropout_probability(p)
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class LayerNorm(Module):
    """Normalizes over the trailing ``normalized_shape``; weight ones and bias zeros (elementwise_affine)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=np.float32, device=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape = tuple(_count("LayerNorm", "normalized_shape", n) for n in shape)
        self.eps = _number("LayerNorm", "eps", eps)
        xp = get_backend(device).xp
        self.weight = Parameter(xp.ones(self.normalized_shape, dtype)) if elementwise_affine else None
        self.bias = Parameter(xp.zeros(self.normalized_shape, dtype)) if elementwise_affine else None

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class BatchNorm1d(Module):
    """Per-channel normalization of (N, C) or (N, C, L): batch statistics in training mode, updating the
    running_mean / running_var buffers by ``momentum``; the running statistics in eval mode."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float32, device=None):
        super().__init__()
        num_features = _count("BatchNorm1d", "num_features", num_features)
        eps = _number("BatchNorm1d", "eps", eps)
        momentum = None if momentum is None else _number("BatchNorm1d", "momentum (or None)", momentum, high=1.0)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        xp = get_backend(device).xp
        self.weight = Parameter(xp.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(xp.zeros(num_features, dtype)) if affine else None
        self.track_running_stats = track_running_stats
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(xp.zeros(num_features, dtype)))
            self.register_buffer("running_var", Tensor(xp.ones(num_features, dtype)))
            self.register_buffer("num_batches_tracked", Tensor(xp.zeros((), np.int64)))

    def forward(self, x):
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}): expected (N, {self.num_features}) or "
                             f"(N, {self.num_features}, L) input, got shape {x.shape}")
        use_batch = self.training or not self.track_running_stats
        running = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        momentum = self.momentum
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked += 1
            if momentum is None:  # PyTorch's cumulative moving average: 1 / the batches seen (a host read)
                momentum = 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(x, *running, self.weight, self.bias, use_batch, momentum, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class Embedding(Module):
    """A lookup table: rows of weight (num_embeddings, embedding_dim) ~ N(0, 1), the ``padding_idx`` row zero."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32, device=None):
        super().__init__()
        num_embeddings = _count("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = _count("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx {padding_idx} out of range for {num_embeddings} rows")
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        self.weight = Parameter(get_backend(device).xp.empty((num_embeddings, embedding_dim), dtype))
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, indices):
        return F.embedding(indices, self.weight, self.padding_idx)


class Softmax(Module):
    def __init__(self, axis=-1, *, dim=None):
        super().__init__()
        self.axis = axis if dim is None else dim

    def forward(self, x):
        return F.softmax(x, self.axis)


class LogSoftmax(Softmax):
    def forward(self, x):
        return F.log_softmax(x, self.axis)


class Maxout(Module):
    """A linear map to out_features * pieces units, then the max over each group of ``pieces``."""

    def __init__(self, in_features: int, out_features: int, pieces: int, dtype=np.float32, device=None):
        super().__init__()
        self.pieces = pieces
        self.linear = Linear(in_features, out_features * pieces, dtype=dtype, device=device)

    def forward(self, x):
        return F.maxout(self.linear(x), self.pieces)

    def extra_repr(self):
        return f"pieces={self.pieces}"


ACTIVATION_MODULES = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "leaky_relu": LeakyReLU, "elu": ELU}
# every activation module the library has, by name (the fused vocabulary above, and those computed from their input)
MLP_ACTIVATIONS = {**ACTIVATION_MODULES, "gelu": GELU, "silu": SiLU}


def MLP(sizes, activation="relu", dtype=np.float32, device=None) -> Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last):
    ``MLP([784, 1024, 1024, 10])``. Layer i is ``model[2 * i]``."""
    sizes = list(sizes)
    if len(sizes) < 2 or any(int(s) <= 0 for s in sizes):
        raise ValueError(f"MLP: sizes must be at least two positive integers, got {sizes}")
    if activation not in MLP_ACTIVATIONS:
        raise ValueError(f"MLP: activation must be one of {sorted(MLP_ACTIVATIONS)}, got {activation!r}")
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(fan_in, fan_out, dtype=dtype, device=device))
        if i < len(sizes) - 2:
            layers.append(MLP_ACTIVATIONS[activation]())
    return Sequential(*layers)
