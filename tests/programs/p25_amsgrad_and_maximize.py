"""AMSGrad on a regression, and gradient ascent (maximize=True) on a log-likelihood."""
import numpy as np

from common import init_, values


def main(torch):
    nn = torch.nn
    rng = np.random.default_rng(44)
    x = torch.from_numpy(rng.standard_normal((40, 3)).astype(np.float32))
    target = x @ torch.from_numpy(np.array([[1.5], [-2.0], [0.5]], np.float32))
    model = nn.Linear(3, 1)
    init_(torch, model, seed=45)
    opt = torch.optim.Adam(model.parameters(), lr=0.05, amsgrad=True)
    losses = []
    for step in range(20):
        opt.zero_grad()
        loss = ((model(x) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    mu = nn.Parameter(torch.zeros(3))
    ascent = torch.optim.SGD([mu], lr=0.1, maximize=True)
    for step in range(15):
        ascent.zero_grad()
        log_likelihood = -((x - mu) ** 2).sum(dim=1).mean()
        log_likelihood.backward()
        ascent.step()
    return {"losses": losses, "mu": values(mu), "out": values(model.weight)}
