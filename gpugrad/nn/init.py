"""Weight initialisation, in place, from the device's seeded generator (see ``manual_seed``)."""
from __future__ import annotations

import math

from ..autograd import mark_changed

GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0)}


def _fans(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"fan in/out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive = math.prod(tensor.shape[2:]) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def gain(nonlinearity: str, param=None) -> float:
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in GAINS:
        raise ValueError(f"init.gain: unknown nonlinearity {nonlinearity!r}")
    return GAINS[nonlinearity]


def _write(tensor, value):
    """In place, as an in-place op: the version is bumped, so a graph that saved the old values refuses."""
    tensor.data[...] = value
    mark_changed(tensor)
    return tensor


def uniform_(tensor, low=0.0, high=1.0):
    b = tensor.backend
    return _write(tensor, b.rand(tensor.shape, tensor.dtype) * (high - low) + low)


def normal_(tensor, mean=0.0, std=1.0):
    b = tensor.backend
    return _write(tensor, b.randn(tensor.shape, tensor.dtype) * std + mean)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """N(mean, std) restricted to [a, b]: values outside are drawn again until none is (PyTorch's bounds are
    absolute, as here)."""
    if not a < b:
        raise ValueError(f"trunc_normal_: the bounds must satisfy a < b, got a={a}, b={b}")
    backend = tensor.backend
    values = backend.randn(tensor.shape, tensor.dtype) * std + mean
    outside = (values < a) | (values > b)
    while bool(outside.any()):  # NOTE: a host read per round; initialisation, not a training step
        values = backend.xp.where(outside, backend.randn(tensor.shape, tensor.dtype) * std + mean, values)
        outside = (values < a) | (values > b)
    return _write(tensor, values)


def zeros_(tensor):
    return _write(tensor, 0)


def ones_(tensor):
    return _write(tensor, 1)


def constant_(tensor, value):
    return _write(tensor, value)


def xavier_uniform_(tensor, gain=1.0):
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio)."""
    fan_in, fan_out = _fans(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def he_uniform_(tensor, nonlinearity="relu", mode="fan_in", a=None):
    """U(-b, b), b = gain * sqrt(3 / fan) (He et al.; PyTorch's kaiming_uniform_)."""
    fan = _fans(tensor)[0 if mode == "fan_in" else 1]
    bound = gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound)


def he_normal_(tensor, nonlinearity="relu", mode="fan_in", a=None):
    fan = _fans(tensor)[0 if mode == "fan_in" else 1]
    return normal_(tensor, 0.0, gain(nonlinearity, a) / math.sqrt(fan))


kaiming_uniform_ = he_uniform_
kaiming_normal_ = he_normal_
