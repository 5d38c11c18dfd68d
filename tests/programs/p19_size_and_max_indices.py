"""Accuracy the way tutorials write it: x.size(0) for the batch, out.max(1)[1] and torch.max(out, 1) for the
predicted classes, (pred == y).sum().item()."""
from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(n=90, features=5, classes=3, seed=31)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))
    init_(torch, model, seed=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = []
    for epoch in range(8):
        for i in range(0, X.size(0), 30):
            xb, yb = X[i:i + 30], Y[i:i + 30]
            opt.zero_grad()
            out = model(xb)
            F.cross_entropy(out, yb).backward()
            opt.step()
        with torch.no_grad():
            out = model(X)
            _, predicted = torch.max(out, 1)
            correct = (out.max(1)[1] == Y).sum().item()
            history += [correct / Y.size(0), (predicted == Y).float().mean().item(), float(out.size(1))]
    return {"history": history, "out": values(model[2].weight)}
