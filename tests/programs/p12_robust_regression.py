"""Regression with outliers: Huber, smooth L1 and L1 losses, biases zeroed through model.apply and
nn.init, MultiStepLR, Adam; a prediction under no_grad at the end."""
import numpy as np

from common import init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(19)
    x = rng.uniform(-2, 2, (120, 1)).astype(np.float32)
    y = (np.sin(2 * x) + 0.1 * rng.standard_normal((120, 1))).astype(np.float32)
    y[::15] += 4.0  # outliers
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    model = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
    init_(torch, model, seed=20)

    def zero_bias(module):
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)

    model.apply(zero_bias)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[15, 30], gamma=0.3)
    losses = {"huber": [], "smooth_l1": [], "l1": []}
    for step in range(45):
        opt.zero_grad()
        pred = model(X)
        huber = nn.HuberLoss(delta=0.5)(pred, Y)
        smooth = F.smooth_l1_loss(pred, Y, beta=0.5)
        l1 = nn.L1Loss()(pred, Y)
        (huber + 0.5 * smooth + 0.1 * l1).backward()
        opt.step()
        sched.step()
        for key, value in zip(losses, (huber, smooth, l1)):
            losses[key].append(value.item())
    with torch.no_grad():
        grid = model(torch.linspace(-2, 2, 9).unsqueeze(1))
    return {**losses, "grid": values(grid), "lr": sched.get_last_lr()}
