"""Losses a user writes from tensor ops: a focal loss (gather, clamp, where, log_softmax), a hinge
loss (topk, maximum), binary cross-entropy with logits; gradients compared."""
import numpy as np

TOLERANCE = dict(rtol=1e-10, atol=1e-12)  # float64 throughout


def main(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(13)
    logits = torch.from_numpy(rng.standard_normal((8, 5))).requires_grad_()
    labels = torch.from_numpy(rng.integers(0, 5, 8))
    log_p = F.log_softmax(logits, dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
    p = log_p.exp()
    focal = (-(1 - p).clamp(min=1e-6) ** 2 * log_p).mean()
    top2 = logits.topk(2, dim=1).values
    hinge = torch.maximum(top2[:, 1] - top2[:, 0] + 1.0, torch.zeros(8, dtype=torch.float64)).sum()
    scores = torch.from_numpy(rng.standard_normal(8)).requires_grad_()
    targets = torch.from_numpy((rng.random(8) > 0.5).astype(np.float64))
    bce = F.binary_cross_entropy_with_logits(scores, targets)
    masked = torch.where(labels > 2, logits[:, 0], -logits[:, 1]).sum()
    (focal + 0.1 * hinge + bce + 0.01 * masked).backward()
    return {"focal": focal.item(), "hinge": hinge.item(), "bce": bce.item(), "masked": masked.item(),
            "grad_logits": logits.grad.numpy(), "grad_scores": scores.grad.numpy()}
