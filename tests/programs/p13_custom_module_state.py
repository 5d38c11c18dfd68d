"""A custom module with Parameters, a buffer and a ModuleDict: names, state_dict keys and shapes as
PyTorch's, train()/eval() reaching every child, a frozen part (requires_grad_(False)), reloading."""
import numpy as np

from common import init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional

    class Scaled(nn.Module):
        def __init__(self, features):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(features))
            self.register_buffer("calls", torch.zeros(1))

        def forward(self, x):
            if self.training:
                self.calls += 1
            return x * self.scale

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"a": nn.Linear(5, 3), "b": nn.Linear(5, 3)})
            self.body = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), Scaled(5), nn.LayerNorm(5))

        def forward(self, x, head):
            return self.heads[head](self.body(x))

    model = Model()
    init_(torch, model, seed=21)
    for p in model.heads["b"].parameters():
        p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=0.05, momentum=0.5)
    rng = np.random.default_rng(22)
    X = torch.from_numpy(rng.standard_normal((16, 4)).astype(np.float32))
    target = torch.from_numpy(rng.integers(0, 3, 16))
    losses = []
    for step in range(12):
        opt.zero_grad()
        loss = F.cross_entropy(model(X, "a"), target) + 0.5 * F.cross_entropy(model(X, "b"), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    modes = [m.training for m in model.modules()]
    state = model.state_dict()
    fresh = Model()
    fresh.load_state_dict(state)
    fresh.eval()
    with torch.no_grad():
        same = (fresh(X, "a") - model(X, "a")).abs().max().item()
    return {"losses": losses, "keys": [float(len(k)) for k in state], "n_keys": len(state), "modes": modes,
            "calls": values(model.body[2].calls), "frozen": values(model.heads["b"].weight), "same": same,
            "trainable": len(trainable), "named": [float(len(n)) for n, _ in model.named_parameters()]}
