"""A classifier trained with MSE on one-hot targets and softmax outputs, reshaped with view, a buffer
made with zeros(..., dtype=torch.float32), clone().detach() snapshots, gradient clipping by value."""
import numpy as np

from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(n=64, features=8, classes=4, seed=27)
    X, Y = torch.from_numpy(x).view(-1, 2, 4), torch.from_numpy(y)
    target = F.one_hot(Y, num_classes=4).float()
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    init_(torch, model, seed=28)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    running = torch.zeros(4, dtype=torch.float32)
    first = model[1].weight.clone().detach()
    losses = []
    for step in range(25):
        opt.zero_grad()
        probs = F.softmax(model(X), dim=-1)
        loss = F.mse_loss(probs, target)
        loss.backward()
        nn.utils.clip_grad_value_(model.parameters(), clip_value=0.05)
        opt.step()
        with torch.no_grad():
            running = 0.9 * running + 0.1 * probs.mean(dim=0)
        losses.append(loss.item())
    moved = (model[1].weight - first).abs().max().item()
    assert not first.requires_grad and np.isfinite(moved)
    return {"losses": losses, "running": values(running), "moved": moved}
