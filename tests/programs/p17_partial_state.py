"""Transfer: a trained body's weights loaded into a bigger model with strict=False (the missing and
unexpected keys reported), the body frozen, only the new head trained."""
from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(n=80, features=5, classes=2, seed=29)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    small = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    init_(torch, small, seed=30)
    big = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    init_(torch, big, seed=31)
    state = {k: v for k, v in small.state_dict().items() if k.startswith("0.")}
    state["extra.weight"] = torch.zeros(1)
    result = big.load_state_dict(state, strict=False)
    for p in big[0].parameters():
        p.requires_grad = False
    opt = torch.optim.Adam([p for p in big.parameters() if p.requires_grad], lr=0.01)
    losses = []
    for step in range(15):
        opt.zero_grad()
        loss = F.cross_entropy(big(X), Y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert big[0].weight.grad is None
    return {"losses": losses, "missing": sorted(result.missing_keys), "unexpected": sorted(result.unexpected_keys),
            "body": values(big[0].weight), "head": values(big[4].weight)}
