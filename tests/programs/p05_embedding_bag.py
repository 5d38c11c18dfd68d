"""A bag-of-words text classifier: Embedding with padding_idx, masked mean pooling, LayerNorm."""
import numpy as np

from common import init_, values


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(7)
    tokens = rng.integers(1, 50, (64, 12))
    lengths = rng.integers(3, 13, 64)
    tokens[np.arange(12)[None, :] >= lengths[:, None]] = 0  # padding
    labels = (tokens % 7 == 3).sum(1) > 1

    class Bag(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16, padding_idx=0)
            self.norm = nn.LayerNorm(16)
            self.out = nn.Linear(16, 2)

        def forward(self, ids):
            mask = (ids != 0).float().unsqueeze(-1)
            pooled = (self.emb(ids) * mask).sum(dim=1) / mask.sum(dim=1)
            return self.out(self.norm(pooled))

    model = Bag()
    init_(torch, model, seed=8)
    with torch.no_grad():
        model.emb.weight[0].zero_()  # the padding row starts at zero, as nn.Embedding makes it
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    ids, target = torch.from_numpy(tokens), torch.from_numpy(labels.astype(np.int64))
    losses = []
    for step in range(25):
        opt.zero_grad()
        loss = F.cross_entropy(model(ids), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses, "padding_row": values(model.emb.weight[0]), "emb": values(model.emb.weight[1:6])}
