"""Layers, activation modules and loss modules."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..backend import get_backend
from ..ops.activation import Elementwise, activation_param, keyword_param
from ..ops.shape import check_axis
from . import init
from .module import Module, Parameter, Sequential


class Linear(Module):
    """y = act(x @ weight.T + bias), weight (out_features, in_features), PyTorch's default initialisation:
    weight and bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).

    ``activation`` (None, or a name of ``gpugrad.ops.activation.ACTIVATIONS`` with its parameter,
    e.g. ``activation="leaky_relu", negative_slope=0.1``) asks for the fused layer: one GEMM, then
    bias + activation in one pass."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32, device=None,
                 activation=None, **param):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: sizes must be positive, got in_features={in_features}, out_features={out_features}")
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

    def fused_forward(self, x, activation, param):
        """This layer followed by ``activation``, as one op (what ``Sequential`` calls)."""
        if self.activation is not None:
            return None
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


class Flatten(Module):
    """Joins the axes start_dim .. end_dim into one (default: all but the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        start = check_axis(self.start_dim, x.ndim, "Flatten", x.shape)
        end = check_axis(self.end_dim, x.ndim, "Flatten", x.shape)
        joined = math.prod(x.shape[start:end + 1])
        return x.reshape(*x.shape[:start], joined, *x.shape[end + 1:])


class Softmax(Module):
    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.softmax(x, self.axis)


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


def MLP(sizes, activation="relu", dtype=np.float32, device=None) -> Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last):
    ``MLP([784, 1024, 1024, 10])``. Layer i is ``model[2 * i]``."""
    sizes = list(sizes)
    if len(sizes) < 2 or any(int(s) <= 0 for s in sizes):
        raise ValueError(f"MLP: sizes must be at least two positive integers, got {sizes}")
    if activation not in ACTIVATION_MODULES:
        raise ValueError(f"MLP: activation must be one of {sorted(ACTIVATION_MODULES)}, got {activation!r}")
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(fan_in, fan_out, dtype=dtype, device=device))
        if i < len(sizes) - 2:
            layers.append(ACTIVATION_MODULES[activation]())
    return Sequential(*layers)


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, pred, target):
        return F.mse_loss(pred, target, self.reduction)


class CrossEntropyLoss(Module):
    def forward(self, logits, labels):
        return F.cross_entropy(logits, labels)


class SVMLoss(Module):
    def __init__(self, margin=1.0):
        super().__init__()
        self.margin = margin

    def forward(self, scores, labels):
        return F.svm_loss(scores, labels, self.margin)
