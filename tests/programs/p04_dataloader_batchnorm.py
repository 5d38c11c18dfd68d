"""A TensorDataset and DataLoader (no shuffle), BatchNorm1d and Dropout in train mode, eval after."""
from common import blobs, init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    from_numpy = torch.from_numpy
    x, y = blobs(n=120, seed=5)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(from_numpy(x), from_numpy(y)),
                                         batch_size=40, shuffle=False)
    # no bias before BatchNorm: its gradient is zero up to rounding, which Adam would amplify into noise
    model = nn.Sequential(nn.Linear(6, 24, bias=False), nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout(p=0.0), nn.Linear(24, 3))
    init_(torch, model, seed=6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    model.train()
    for epoch in range(5):
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        out = model(from_numpy(x[:10]))
    bn = model[1]
    return {"losses": losses, "eval_out": values(out), "running_mean": values(bn.running_mean),
            "running_var": values(bn.running_var), "num_batches": int(bn.num_batches_tracked)}
