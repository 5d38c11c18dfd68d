"""A tiny next-token model over padded sequences: Embedding, log_softmax and nll_loss with ignore_index for the
padding, the tokens counted with (targets != pad).sum()."""
import numpy as np

from common import init_, values

PAD = 0


def main(torch):
    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(35)
    tokens = rng.integers(1, 7, (6, 5))
    tokens[0, 3:] = PAD
    tokens[2, 4:] = PAD
    inputs, targets = torch.from_numpy(tokens[:, :-1]), torch.from_numpy(tokens[:, 1:])
    embed, head = nn.Embedding(7, 4), nn.Linear(4, 7)
    init_(torch, embed, seed=36)
    init_(torch, head, seed=37)
    opt = torch.optim.SGD(list(embed.parameters()) + list(head.parameters()), lr=0.5)
    losses = []
    for step in range(15):
        opt.zero_grad()
        log_probs = F.log_softmax(head(embed(inputs)), dim=-1)
        loss = F.nll_loss(log_probs.reshape(-1, 7), targets.reshape(-1), ignore_index=PAD)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    counted = (targets != PAD).sum().item()
    return {"losses": losses, "counted": counted, "out": values(head.bias)}
