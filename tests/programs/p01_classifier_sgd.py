"""A custom Module with its own layers, SGD with momentum and Nesterov, StepLR, accuracy each epoch."""
from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(6, 16)
            self.fc2 = nn.Linear(16, 3)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

    x, y = blobs()
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    model = Net()
    init_(torch, model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    losses, accuracies, lrs = [], [], []
    for epoch in range(8):
        for i in range(0, len(X), 32):
            opt.zero_grad()
            loss = F.cross_entropy(model(X[i:i + 32]), Y[i:i + 32])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        with torch.no_grad():
            accuracies.append((model(X).argmax(dim=1) == Y).float().mean().item())
    return {"losses": losses, "accuracy": accuracies, "lr": lrs, "fc1.weight": values(model.fc1.weight)}
