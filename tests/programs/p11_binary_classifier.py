"""A binary classifier: BCEWithLogitsLoss with pos_weight, sigmoid probabilities, threshold accuracy,
then the same model trained on its sigmoid output with BCELoss."""
import numpy as np

from common import init_, values


def main(torch):
    nn = torch.nn
    rng = np.random.default_rng(17)
    x = rng.standard_normal((80, 4)).astype(np.float32)
    y = ((x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.standard_normal(80)) > 0.8).astype(np.float32)
    X, Y = torch.from_numpy(x), torch.from_numpy(y).unsqueeze(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.Softplus(), nn.Linear(8, 1))
    init_(torch, model, seed=18)
    criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]))
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    losses, accuracy = [], []
    for step in range(30):
        opt.zero_grad()
        logits = model(X)
        loss = criterion(logits, Y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        accuracy.append(((torch.sigmoid(logits) > 0.5).float() == Y).float().mean().item())
    probabilities = nn.Sequential(model, nn.Sigmoid())
    bce = nn.BCELoss(reduction="sum")
    for step in range(10):
        opt.zero_grad()
        loss = bce(probabilities(X), Y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses, "accuracy": accuracy, "weight": values(model[0].weight)}
