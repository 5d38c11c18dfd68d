"""AdamW with no weight decay on biases (parameter groups), cosine schedule, gradient clipping."""
from common import blobs, init_, values


def main(torch):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 3))
    init_(torch, model, seed=2)
    decay = [p for name, p in model.named_parameters() if name.endswith("weight")]
    no_decay = [p for name, p in model.named_parameters() if name.endswith("bias")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-3, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30, eta_min=1e-4)
    criterion = nn.CrossEntropyLoss()
    x, y = blobs(seed=3)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    losses, norms, lrs = [], [], []
    for step in range(30):
        opt.zero_grad(set_to_none=True)
        loss = criterion(model(X), Y)
        loss.backward()
        norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)))
        opt.step()
        sched.step()
        losses.append(loss.item())
        lrs.append(sched.get_last_lr()[0])
    return {"losses": losses, "grad_norms": norms, "lr": lrs, "last": values(model[4].weight)}
