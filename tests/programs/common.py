"""What the programs share: seeded data and weights, as a user would load them from numpy."""
import numpy as np


def init_(torch, model, seed=0, scale=0.3):
    """Every parameter of ``model`` from a seeded normal distribution (a user loading known weights)."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)) * scale).float())


def blobs(n=96, features=6, classes=3, seed=1):
    """Gaussian blobs: float32 features, int64 labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centers = rng.standard_normal((classes, features)) * 2
    x = (centers[labels] + rng.standard_normal((n, features))).astype(np.float32)
    return x, labels.astype(np.int64)


def values(tensor):
    return tensor.detach().numpy().copy()
