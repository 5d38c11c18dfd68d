"""An imbalanced classifier: CrossEntropyLoss(weight=...) from class frequencies, with label smoothing."""
from common import blobs, init_, values


def main(torch):
    nn = torch.nn
    x, y = blobs(n=120, features=4, classes=3, seed=33)
    y[:60] = 0  # imbalance
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    counts = torch.tensor([float((y == c).sum()) for c in range(3)])
    criterion = nn.CrossEntropyLoss(weight=counts.sum() / (3 * counts), label_smoothing=0.1)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    init_(torch, model, seed=34)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for step in range(25):
        opt.zero_grad()
        loss = criterion(model(X), Y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses, "out": values(model[0].bias)}
