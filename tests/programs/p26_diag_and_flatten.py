"""Images flattened with x.flatten(1) and torch.flatten(x, start_dim=1); a decorrelation penalty on the hidden
features' covariance, its diagonal taken with torch.diag and diag_embed by hand."""
import numpy as np

from common import init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(46)
    images = torch.from_numpy(rng.standard_normal((16, 2, 3, 3)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 3, 16))
    encoder, head = nn.Linear(18, 5), nn.Linear(5, 3)
    init_(torch, encoder, seed=47)
    init_(torch, head, seed=48)
    opt = torch.optim.SGD(list(encoder.parameters()) + list(head.parameters()), lr=0.1)
    losses = []
    for step in range(12):
        flat = images.flatten(1) if step % 2 else torch.flatten(images, start_dim=1)
        h = torch.tanh(encoder(flat))
        centered = h - h.mean(0)
        cov = centered.t() @ centered / (h.size(0) - 1)
        off_diagonal = cov - torch.diag(torch.diag(cov))
        loss = F.cross_entropy(head(h), labels) + 0.1 * (off_diagonal ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses, "shape": list(images.flatten(0, 1).shape), "out": values(encoder.bias)}
