"""Train, save model, optimizer and scheduler state, load into fresh objects, go on: equal to no break."""
import numpy as np

from common import blobs, init_, values


def main(torch, tmp_path):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(seed=9)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)

    def make():
        model = nn.Sequential(nn.Linear(6, 12), nn.SiLU(), nn.Linear(12, 3))
        init_(torch, model, seed=10)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
        return model, opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)

    def train(model, opt, sched, steps):
        losses = []
        for _ in range(steps):
            opt.zero_grad()
            loss = F.cross_entropy(model(X), Y)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        return losses

    model, opt, sched = make()
    straight = train(model, opt, sched, 10)
    model, opt, sched = make()
    first = train(model, opt, sched, 5)
    path = str(tmp_path / "checkpoint.pt")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, path)
    model, opt, sched = make()
    checkpoint = torch.load(path)
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["opt"])
    sched.load_state_dict(checkpoint["sched"])
    resumed = first + train(model, opt, sched, 5)
    assert np.allclose(straight, resumed, rtol=1e-6), (straight, resumed)
    return {"losses": resumed, "weight": values(model[2].weight), "lr": sched.get_last_lr()}
