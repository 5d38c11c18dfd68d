"""Warm-up then decay (LinearLR and ExponentialLR chained with SequentialLR), a LogSoftmax head with
NLLLoss, per-sample losses (reduction="none") and a summed cross-entropy checked against them."""
from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(n=64, features=5, classes=4, seed=23)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    model = nn.Sequential(nn.Linear(5, 10), nn.ELU(), nn.Linear(10, 4), nn.LogSoftmax(dim=1))
    init_(torch, model, seed=24)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=5)
    decay = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, schedulers=[warmup, decay], milestones=[5])
    criterion = nn.NLLLoss()
    losses, lrs = [], []
    for step in range(20):
        opt.zero_grad()
        log_probs = model(X)
        loss = criterion(log_probs, Y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])
    logits = model[:3](X)
    per_sample = F.cross_entropy(logits, Y, reduction="none")
    total = F.cross_entropy(logits, Y, reduction="sum")
    return {"losses": losses, "lr": lrs, "per_sample": values(per_sample), "total": total.item(),
            "gap": abs(per_sample.sum().item() - total.item())}
