"""Normalizations: layer norm and batch norm, forward and backward written once against ``xp``.

Both normalize ``x`` over some axes, ``xhat = (x - mean) / sqrt(var + eps)`` (the biased variance),
then scale and shift: ``y = xhat * weight + bias``. Backward saves ``xhat`` and ``1 / sqrt(var + eps)``:

    dxhat = dy * weight
    dx    = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))     (means over the normalized axes)
    dweight = sum(dy * xhat), dbias = sum(dy)                              (over the other axes)

float16 and bfloat16 are computed in float32 and rounded once. On a GPU, layer norm (statistics over
the trailing axes) runs as one fused kernel forward and one backward (``kernels/layer_norm.cu``, the
same formulas) where it applies; the weight and bias gradients are the sums below either way.
"""
from __future__ import annotations

import math

from ..autograd import Function, recorded
from ..dtypes import working


class Normalize(Function):
    """y = (x - mean) / sqrt(var + eps) [* weight + bias], statistics over ``axes`` of x.

    ``weight`` and ``bias`` (optional, together) are reshaped to ``param_shape`` (x's rank, 1 on the
    axes they do not cover) and their gradients summed over ``param_axes``: layer norm's are the
    normalized shape (summed over the leading axes), batch norm's one value per channel (summed
    over the normalized axes). With ``statistics=(mean, var)`` those are used instead of the
    batch's (batch norm in eval mode) and backward treats them as constants.
    """
    amp = "float32"

    promotes = "float"  # an integer input is normalized as float32 (a statistic of integers is not an integer)

    def __init__(self, axes, eps, param_shape, param_axes, statistics=None):
        self.axes, self.eps, self.statistics = tuple(axes), float(eps), statistics
        self.param_shape, self.param_axes = tuple(param_shape), tuple(param_axes)

    def forward(self, x, weight=None, bias=None):
        kernels, self.fused = self.backend.kernels, None
        if kernels is not None and self.statistics is None and self.axes == tuple(range(x.ndim - len(self.axes), x.ndim)):
            # layer norm (the trailing axes): one fused launch on a GPU where it applies
            cols = math.prod(x.shape[x.ndim - len(self.axes):])
            fused = kernels.layer_norm_forward(x, weight, bias, cols, self.eps) if cols else None
            if fused is not None:
                y, xhat, rstd = fused
                keep = x.shape[:x.ndim - len(self.axes)] + (1,) * len(self.axes)
                self.saved, self.fused, self.batch_statistics = (xhat, rstd.reshape(keep), weight), cols, None
                return y
        xp, w = self.backend.xp, working(x)
        if self.statistics is None:
            mean = w.mean(axis=self.axes, keepdims=True)
            var = ((w - mean) ** 2).mean(axis=self.axes, keepdims=True)
        else:
            # NOTE: through the capture (recorded): a replay must read the running statistics as they are then
            mean, var = (working(recorded(s)).reshape(self.param_shape) for s in self.statistics)
        rstd = 1 / xp.sqrt(var + self.eps)
        xhat = (w - mean) * rstd
        self.batch_statistics = (mean, var)
        y = xhat if weight is None else xhat * working(weight).reshape(self.param_shape) + \
            working(bias).reshape(self.param_shape)
        self.saved = (xhat, rstd, weight)
        return y.astype(x.dtype, copy=False)

    def backward(self, grad_output):
        xhat, rstd, weight = self.saved
        g = working(grad_output)
        grads = [None, None, None]
        if self.needs_input_grad[0]:
            dx = self.backend.kernels.layer_norm_backward(grad_output, xhat, rstd, weight, self.fused) \
                if self.fused else None
            if dx is None:  # no kernel, or it does not apply: the formula
                dxhat = g if weight is None else g * working(weight).reshape(self.param_shape)
                dx = (rstd * dxhat if self.statistics is not None else rstd * (
                    dxhat - dxhat.mean(axis=self.axes, keepdims=True)
                    - xhat * (dxhat * xhat).mean(axis=self.axes, keepdims=True))).astype(grad_output.dtype, copy=False)
            grads[0] = dx
        if weight is not None:
            shape = weight.shape
            grads[1] = (g * xhat).sum(axis=self.param_axes).reshape(shape).astype(weight.dtype, copy=False)
            grads[2] = g.sum(axis=self.param_axes).reshape(shape).astype(weight.dtype, copy=False)
        return tuple(grads[:1 + 2 * (weight is not None)])
