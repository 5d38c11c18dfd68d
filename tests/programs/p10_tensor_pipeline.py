"""Tensor code outside a model: cat/stack, softmax attention by hand, einsum, sorting, cumsum, norms."""
import numpy as np

TOLERANCE = dict(rtol=1e-10, atol=1e-12)  # float64 throughout


def main(torch):
    F = torch.nn.functional
    rng = np.random.default_rng(16)
    q = torch.from_numpy(rng.standard_normal((2, 4, 8))).requires_grad_()
    k = torch.from_numpy(rng.standard_normal((2, 5, 8))).requires_grad_()
    v = torch.from_numpy(rng.standard_normal((2, 5, 3))).requires_grad_()
    attn = F.softmax(q @ k.transpose(1, 2) / 8 ** 0.5, dim=-1)
    out = attn @ v
    mixed = torch.einsum("bqd,bkd->bqk", q, k)
    pieces = torch.cat([out.reshape(2, -1), mixed.reshape(2, -1)], dim=1)
    stacked = torch.stack([pieces, pieces * 2], dim=0)
    ranked, order = stacked.sort(dim=-1, descending=True)
    total = ranked[..., :5].sum() + stacked.cumsum(dim=-1).mean() + pieces.norm(dim=1).sum()
    total = total + torch.sqrt(torch.abs(out)).sum() + torch.exp(-out.pow(2)).mean() + torch.log1p(out.pow(2)).sum()
    total.backward()
    return {"total": total.item(), "order": order.numpy(), "grad_q": q.grad.numpy(), "grad_k": k.grad.numpy(),
            "grad_v": v.grad.numpy(), "max": out.amax(dim=1).detach().numpy(),
            "argmax": out.argmax(dim=1).numpy()}
