"""A train/validation loop: ReduceLROnPlateau on the validation loss, best weights kept with
copy.deepcopy of the state dict, early stopping."""
import copy

from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(n=160, seed=14)
    Xt, Yt = torch.from_numpy(x[:120]), torch.from_numpy(y[:120])
    Xv, Yv = torch.from_numpy(x[120:]), torch.from_numpy(y[120:])
    model = nn.Sequential(nn.Linear(6, 20), nn.LeakyReLU(0.1), nn.Linear(20, 3))
    init_(torch, model, seed=15, scale=1.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1)
    best, best_state, waited, history = float("inf"), None, 0, []
    for epoch in range(40):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(Xt), Yt).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            val = F.cross_entropy(model(Xv), Yv).item()
        sched.step(val)
        history.append((val, opt.param_groups[0]["lr"]))
        if val < best - 1e-4:
            best, best_state, waited = val, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= 5:
                break
    model.load_state_dict(best_state)
    with torch.no_grad():
        final = F.cross_entropy(model(Xv), Yv).item()
    return {"history": [v for pair in history for v in pair], "epochs": len(history), "best": best, "final": final,
            "weight": values(model[0].weight)}
