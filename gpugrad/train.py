"""The training loop behind ``gpugrad train``: an MLP on a bundled data set, on the CPU or a GPU."""
from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import data as datasets
from . import functional as F
from . import nn, optim
from .autograd import no_grad
from .backend import CudaUnavailableError, get_backend
from .serialization import save
from .creation import manual_seed, tensor

LOSSES = ("cross_entropy", "svm", "mse")
OPTIMIZERS = ("sgd", "adam")


@dataclass
class TrainConfig:
    dataset: str = "digits"
    hidden: tuple = (256, 256)
    activation: str = "relu"
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    lr: float | None = None  # default: 1e-3 for Adam, 0.1 for SGD
    momentum: float = 0.9
    weight_decay: float = 0.0  # AdamW's decoupled decay with --optimizer adam, L2 with sgd
    schedule: str = "constant"  # or "cosine": lr * (1 + cos(pi * epoch / epochs)) / 2, per epoch
    epochs: int = 30
    batch_size: int = 64
    device: str = "auto"
    seed: int = 0
    out: str | None = None
    progress: bool | None = None  # None: a bar only when stderr is a terminal
    history: list = field(default_factory=list)

    def check(self):
        """Raise ValueError with a one-line reason for any bad setting."""
        if self.dataset not in datasets.DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r} (choose from {', '.join(datasets.DATASETS)})")
        if not self.hidden or any(int(h) <= 0 for h in self.hidden):
            raise ValueError(f"--hidden needs positive layer sizes such as 256,256, got {self.hidden}")
        if self.activation not in nn.layers.ACTIVATION_MODULES:
            raise ValueError(f"unknown activation {self.activation!r} (choose from {', '.join(nn.layers.ACTIVATION_MODULES)})")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r} (choose from {', '.join(LOSSES)})")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r} (choose constant or cosine)")
        if self.weight_decay < 0:
            raise ValueError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.epochs < 1 or self.batch_size < 1 or (self.lr is not None and self.lr <= 0):
            raise ValueError(f"--epochs and --batch-size must be >= 1 and --lr > 0 "
                             f"(got {self.epochs}, {self.batch_size}, {self.lr})")
        if self.dataset == "toy" and self.loss != "mse":
            raise ValueError("the toy data set is a regression: use --loss mse")


def resolve_device(device: str) -> str:
    """``auto`` picks the first GPU when CuPy and a device are usable, else the CPU."""
    if device != "auto":
        get_backend(device)  # raises CudaUnavailableError / ValueError with the reason
        return device
    try:
        get_backend("cuda:0")
        return "cuda:0"
    except CudaUnavailableError:
        return "cpu"


def _loss(name, outputs, labels, num_classes):
    if name == "cross_entropy":
        return F.cross_entropy(outputs, labels)
    if name == "svm":
        return F.svm_loss(outputs, labels)
    if num_classes is None:  # regression targets
        return F.mse_loss(outputs, labels)
    backend = outputs.backend
    onehot = backend.xp.eye(num_classes, dtype=outputs.dtype)[labels.data]
    return F.mse_loss(F.softmax(outputs), tensor(onehot, device=outputs.device))


def _evaluate(model, X, y, config, num_classes, batch=4096):
    losses, correct, n = 0.0, 0, len(X)
    with no_grad():
        for start in range(0, n, batch):
            xb, yb = X[start:start + batch], y[start:start + batch]
            out = model(xb)
            losses += _loss(config.loss, out, yb, num_classes).item() * len(xb)
            if num_classes is not None:
                correct += int((out.data.argmax(axis=1) == yb.data).sum())
    return losses / max(n, 1), (correct / n if num_classes is not None else None)


def _progress(total, enabled, desc):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr)


def train(config: TrainConfig, log=print):
    """Train; return (model, history). Writes history.json/.csv, loss.png and model.npz to ``config.out``."""
    config.check()
    device = resolve_device(config.device)
    manual_seed(config.seed)
    data = datasets.load(config.dataset)
    num_classes = data.num_classes
    outputs = num_classes if num_classes is not None else data.y_train.shape[1]
    # Initialised on the CPU, then moved: the same seed gives the same weights on every device.
    model = nn.MLP([data.num_features, *map(int, config.hidden), outputs], activation=config.activation).to(device)
    lr = config.lr if config.lr is not None else (1e-3 if config.optimizer == "adam" else 0.1)
    if config.optimizer == "adam":
        opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    else:
        opt = optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
    loader = datasets.DataLoader(data.X_train, data.y_train, config.batch_size, shuffle=True, seed=config.seed,
                                 device=device)
    X_test, y_test = tensor(data.X_test, device=device), tensor(data.y_test, device=device)
    show_bar = sys.stderr.isatty() if config.progress is None else config.progress
    log(f"gpugrad train: {config.dataset} ({len(data.X_train)} train / {len(data.X_test)} test), "
        f"MLP {[data.num_features, *config.hidden, outputs]} {config.activation}, {config.loss}, "
        f"{config.optimizer} lr={lr} ({config.schedule}) weight decay {config.weight_decay}, "
        f"batch {config.batch_size}, {config.epochs} epochs, on {device}")
    history = []
    for epoch in range(1, config.epochs + 1):
        if config.schedule == "cosine":
            opt.defaults["lr"] = lr * (1 + math.cos(math.pi * (epoch - 1) / config.epochs)) / 2
        bar = _progress(len(loader), show_bar, f"epoch {epoch}/{config.epochs}")
        started = time.perf_counter()
        total, seen = 0.0, 0
        running = []
        for xb, yb in loader:
            loss = _loss(config.loss, model(xb), yb, num_classes)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running.append(loss)
            seen += len(xb)
            if bar is not None:
                bar.update(1)
        # One device-to-host transfer per epoch, not per batch.
        sizes = [min(config.batch_size, len(loader.X) - i * config.batch_size) for i in range(len(running))]
        total = sum(l.item() * s for l, s in zip(running, sizes))
        get_backend(device).synchronize()
        elapsed = time.perf_counter() - started
        if bar is not None:
            bar.close()
        test_loss, accuracy = _evaluate(model, X_test, y_test, config, num_classes)
        record = {"epoch": epoch, "train_loss": total / max(seen, 1), "test_loss": test_loss,
                  "test_accuracy": accuracy, "samples_per_s": seen / elapsed if elapsed > 0 else None}
        history.append(record)
        acc = f", test accuracy {accuracy:.4f}" if accuracy is not None else ""
        log(f"epoch {epoch:3d}: train loss {record['train_loss']:.4f}, test loss {test_loss:.4f}{acc}, "
            f"{record['samples_per_s']:.0f} samples/s")
    if config.out:
        write_outputs(Path(config.out), model, history, log)
    return model, history


def write_outputs(out: Path, model, history, log=print):
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(history, indent=2))
    with open(out / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    save(model.state_dict(), out / "model.npz")
    written = ["history.json", "history.csv", "model.npz"]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        epochs = [r["epoch"] for r in history]
        ax.plot(epochs, [r["train_loss"] for r in history], label="train loss")
        ax.plot(epochs, [r["test_loss"] for r in history], label="test loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if history[0]["test_accuracy"] is not None:
            twin = ax.twinx()
            twin.plot(epochs, [r["test_accuracy"] for r in history], color="tab:green", label="test accuracy")
            twin.set_ylabel("test accuracy")
        ax.legend(loc="upper right")
        fig.tight_layout()
        fig.savefig(out / "loss.png", dpi=100)
        plt.close(fig)
        written.append("loss.png")
    except ImportError:
        pass
    log(f"wrote {', '.join(written)} to {out}")
