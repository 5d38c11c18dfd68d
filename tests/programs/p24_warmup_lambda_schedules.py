"""A linear warm-up written as LambdaLR, then a MultiplicativeLR decay on a second optimizer."""
from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(n=60, features=4, classes=2, seed=42)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    init_(torch, model, seed=43)
    first = torch.optim.SGD(model[0].parameters(), lr=0.2)
    second = torch.optim.SGD(model[2].parameters(), lr=0.2)
    warmup = torch.optim.lr_scheduler.LambdaLR(first, lambda epoch: min(1.0, (epoch + 1) / 5))
    decay = torch.optim.lr_scheduler.MultiplicativeLR(second, lambda epoch: 0.9)
    rates, losses = [], []
    for epoch in range(10):
        first.zero_grad()
        second.zero_grad()
        loss = F.cross_entropy(model(X), Y)
        loss.backward()
        first.step()
        second.step()
        warmup.step()
        decay.step()
        rates += [first.param_groups[0]["lr"], second.param_groups[0]["lr"]]
        losses.append(loss.item())
    return {"rates": rates, "losses": losses, "out": values(model[2].bias)}
