"""Comparing optimizers on one problem: the same model trained with RMSprop and with Adagrad from the
same weights (copy.deepcopy of the model), the final losses and the winner's weights."""
import copy

import numpy as np

from common import init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(32)
    x = rng.standard_normal((100, 3)).astype(np.float32)
    y = (np.tanh(x @ np.array([[1.0], [-1.0], [0.5]], np.float32)) + 0.05 * rng.standard_normal((100, 1))).astype(np.float32)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    base = nn.Sequential(nn.Linear(3, 10), nn.Tanh(), nn.Linear(10, 1))
    init_(torch, base, seed=33)
    results = {}
    for name, make in (("rmsprop", lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.3)),
                       ("adagrad", lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01))):
        model = copy.deepcopy(base)
        opt = make(model.parameters())
        curve = []
        for step in range(30):
            opt.zero_grad()
            loss = F.mse_loss(model(X), Y)
            loss.backward()
            opt.step()
            curve.append(loss.item())
        results[name] = (curve, model)
    winner = min(results, key=lambda k: results[k][0][-1])
    return {"rmsprop": results["rmsprop"][0], "adagrad": results["adagrad"][0], "winner": [winner],
            "weights": values(results[winner][1][0].weight)}
