"""Linear regression trained by hand: requires_grad tensors, no_grad updates, grad.zero_()."""
import numpy as np


def main(torch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((200, 3)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]], np.float32) + 0.3 + 0.05 * rng.standard_normal((200, 1))).astype(np.float32)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    w = torch.zeros(3, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    losses = []
    for step in range(60):
        pred = X @ w + b
        loss = ((pred - Y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
            w.grad.zero_()
            b.grad.zero_()
        losses.append(loss.item())
    return {"losses": losses, "w": w.detach().numpy().ravel().tolist(), "b": b.item()}
