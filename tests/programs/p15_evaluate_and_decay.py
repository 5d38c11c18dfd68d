"""The loop of a tutorial: a DataLoader with len() and enumerate(), a @torch.no_grad() evaluate function,
predictions gathered with torch.cat, accuracy from (pred == y).sum(), the learning rate decayed by hand
through param_groups, model.train(False), the parameter count."""
from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    x, y = blobs(n=150, features=4, classes=3, seed=25)
    train = torch.utils.data.TensorDataset(torch.from_numpy(x[:120]), torch.from_numpy(y[:120]))
    loader = torch.utils.data.DataLoader(train, batch_size=32, shuffle=False)
    Xv, Yv = torch.from_numpy(x[120:]), torch.from_numpy(y[120:])
    model = nn.Sequential(nn.Linear(4, 12), nn.Sigmoid(), nn.Linear(12, 3))
    init_(torch, model, seed=26)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

    @torch.no_grad()
    def evaluate(X, Y):
        model.train(False)
        predictions = torch.cat([model(X[i:i + 10]).argmax(dim=1) for i in range(0, len(X), 10)])
        model.train()
        return (predictions == Y).sum().item() / len(Y)

    history = []
    for epoch in range(6):
        total = 0.0
        for i, (xb, yb) in enumerate(loader):
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        for group in opt.param_groups:
            group["lr"] *= 0.7
        history += [total / len(train), evaluate(Xv, Yv), float(len(loader)), float(i)]
    assert torch.is_grad_enabled()
    return {"history": history, "count": sum(p.numel() for p in model.parameters()), "out": values(model[2].bias)}
