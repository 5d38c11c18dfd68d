"""Gradient clipping, as ``torch.nn.utils``: in place on ``.grad``, with no host synchronization."""
from __future__ import annotations

import math

import numpy as np

from ..dtypes import working
from ..tensor import Tensor


def _gradients(parameters, op):
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad.data for p in params if p.grad is not None]
    devices = {p.grad.device for p in params if p.grad is not None}
    if len(devices) > 1:
        raise RuntimeError(f"{op}: gradients on several devices {sorted(devices)}; clip each device's separately")
    return grads, (params[0].grad.backend if grads else None)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False) -> Tensor:
    """Scale all gradients by min(1, max_norm / (total_norm + 1e-6)), the norm taken over all of them
    together; returns the total norm as a 0-d tensor on the gradients' device (read it with ``.item()``,
    which is the only host synchronization)."""
    grads, backend = _gradients(parameters, "clip_grad_norm_")
    if not grads:
        return Tensor(np.zeros((), np.float32))
    xp, norm_type = backend.xp, float(norm_type)
    if math.isinf(norm_type):
        total = xp.max(xp.stack([xp.abs(g).max() if g.size else xp.zeros((), g.dtype) for g in grads]))
    else:
        total = sum((xp.abs(working(g)) ** norm_type).sum()
                    for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} is {float(total)}")
    scale = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= scale.astype(g.dtype)
    return Tensor(xp.asarray(total))


def clip_grad_value_(parameters, clip_value) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], in place."""
    grads, backend = _gradients(parameters, "clip_grad_value_")
    for g in grads:
        backend.xp.clip(g, -clip_value, clip_value, out=g)
