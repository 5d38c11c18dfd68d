"""Loss modules: each calls its function in ``gpugrad.functional`` with the arguments it was made with."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class _Loss(Module):
    function = None  # the functional loss, called as function(input, target, **self.options)

    def __init__(self, reduction="mean", **options):
        super().__init__()
        F._reduction(reduction, type(self).__name__)
        self.options = dict(reduction=reduction, **options)

    def forward(self, input, target):
        return type(self).function(input, target, **self.options)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items() if not hasattr(v, "shape"))


class MSELoss(_Loss):
    function = F.mse_loss


class L1Loss(_Loss):
    function = F.l1_loss


class CrossEntropyLoss(_Loss):
    function = F.cross_entropy


class NLLLoss(_Loss):
    function = F.nll_loss


class BCELoss(_Loss):
    function = F.binary_cross_entropy

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction, weight=weight)


class BCEWithLogitsLoss(_Loss):
    function = F.binary_cross_entropy_with_logits

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction, weight=weight, pos_weight=pos_weight)


class SmoothL1Loss(_Loss):
    function = F.smooth_l1_loss

    def __init__(self, reduction="mean", beta=1.0):
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
            raise ValueError(f"SmoothL1Loss: beta must be a number >= 0, got {beta!r}")
        super().__init__(reduction, beta=beta)


class HuberLoss(_Loss):
    function = F.huber_loss

    def __init__(self, reduction="mean", delta=1.0):
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
            raise ValueError(f"HuberLoss: delta must be a number > 0, got {delta!r}")
        super().__init__(reduction, delta=delta)


class SVMLoss(Module):
    """The multiclass SVM (hinge) loss of the lecture, averaged over the batch."""

    def __init__(self, margin=1.0):
        super().__init__()
        self.margin = margin

    def forward(self, scores, labels):
        return F.svm_loss(scores, labels, self.margin)
