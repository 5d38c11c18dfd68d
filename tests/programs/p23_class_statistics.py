"""Data statistics before training: torch.unique with counts, bincount, torch.equal between two label views,
class weights from the counts, and the majority-class baseline."""
from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(n=80, features=3, classes=4, seed=40)
    Y = torch.from_numpy(y)
    classes, counts = torch.unique(Y, return_counts=True)
    binned = torch.bincount(Y, minlength=4)
    same = torch.equal(counts, binned[classes])
    baseline = counts.max().item() / Y.numel()
    weights = (1.0 / binned.float()) / (1.0 / binned.float()).sum()
    model = nn.Linear(3, 4)
    init_(torch, model, seed=41)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    for step in range(10):
        opt.zero_grad()
        F.cross_entropy(model(torch.from_numpy(x)), Y, weight=weights).backward()
        opt.step()
    inverse = torch.unique(Y[:10], return_inverse=True)[1]
    return {"classes": classes.tolist(), "counts": counts.tolist(), "same": float(same), "baseline": baseline,
            "inverse": inverse.tolist(), "out": values(model.weight)}
