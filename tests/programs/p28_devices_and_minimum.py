"""Device-agnostic code with torch.device, and the minimum: x.min(dim) values and indices, torch.min(a, b)
elementwise, a hinge built from torch.max(z, zeros)."""
from common import blobs, init_, values


def main(torch):
    nn = torch.nn
    device = torch.device("cpu")
    x, y = blobs(n=48, features=4, classes=2, seed=51)
    X = torch.from_numpy(x).to(device)
    signs = torch.from_numpy(y * 2 - 1).float().to(device)
    model = nn.Linear(4, 1).to(device)
    init_(torch, model, seed=52)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for step in range(12):
        margin = 1 - signs * model(X).squeeze(1)
        hinge = torch.max(margin, torch.zeros_like(margin)).mean()
        opt.zero_grad()
        hinge.backward()
        opt.step()
        losses.append(hinge.item())
    scores = X @ model.weight.t()
    lowest, where = scores.min(0)
    clipped = torch.min(scores, torch.ones_like(scores))
    return {"losses": losses, "lowest": values(lowest), "where": where.tolist(), "clipped": values(clipped.sum(0)),
            "device": str(device), "out": values(model.weight)}
