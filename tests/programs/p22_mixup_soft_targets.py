"""Mixup: two batches blended, the loss against the blended one-hot targets (cross_entropy with class
probabilities)."""
from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(n=64, features=5, classes=4, seed=38)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    onehot = F.one_hot(Y, 4).float()
    model = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 4))
    init_(torch, model, seed=39)
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.5)
    losses = []
    for step in range(20):
        lam = 0.3 + 0.02 * step
        mixed_x = lam * X + (1 - lam) * X.flip(0)
        mixed_y = lam * onehot + (1 - lam) * onehot.flip(0)
        opt.zero_grad()
        loss = F.cross_entropy(model(mixed_x), mixed_y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses, "out": values(model[0].weight)}
