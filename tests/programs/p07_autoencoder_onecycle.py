"""An autoencoder: ModuleList encoder, Sequential decoder, F.mse_loss, OneCycleLR, gradient accumulation."""
import numpy as np

from common import init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(11)
    data = torch.from_numpy(rng.random((64, 10)).astype(np.float32))

    class AutoEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.ModuleList([nn.Linear(10, 8), nn.Linear(8, 3)])
            self.decoder = nn.Sequential(nn.Linear(3, 8), nn.ELU(), nn.Linear(8, 10), nn.Sigmoid())

        def forward(self, x):
            for layer in self.encoder:
                x = torch.tanh(layer(x))
            return self.decoder(x)

    model = AutoEncoder()
    init_(torch, model, seed=12)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.8)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    losses, lrs = [], []
    for step in range(20):
        opt.zero_grad()
        total = 0.0
        for chunk in data.split(16):
            loss = F.mse_loss(model(chunk), chunk) / 4
            loss.backward()
            total += loss.item()
        opt.step()
        sched.step()
        losses.append(total)
        lrs.append(opt.param_groups[0]["lr"])
    return {"losses": losses, "lr": lrs, "momentum": opt.param_groups[0]["momentum"],
            "code": values(model.encoder[1].weight)}
