"""A layer used twice (weight sharing): its parameters appear under both names in state_dict, and the checkpoint
loads strictly into a fresh copy of the model, which then gives the same outputs."""
import numpy as np

from common import init_, values


def main(torch, tmp_path):
    nn = torch.nn
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    init_(torch, model, seed=49)
    x = torch.from_numpy(np.random.default_rng(50).standard_normal((5, 4)).astype(np.float32))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(5):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
    state = model.state_dict()
    keys = list(state)
    fresh_layer = nn.Linear(4, 4)
    fresh = nn.Sequential(fresh_layer, nn.Tanh(), fresh_layer)
    fresh.load_state_dict(state)
    return {"keys": keys, "count": len(list(model.parameters())), "out": values(fresh(x)),
            "same": float(torch.equal(fresh(x), model(x)))}
