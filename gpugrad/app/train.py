"""The training loop behind ``gpugrad train``: an MLP on a bundled data set, on the CPU or a GPU.

A run keeps its work. Its folder is made (and checked writable) before the first step and holds
``config.json`` from the start; after every epoch the history (``history.json`` / ``.csv``) and a
checkpoint (``checkpoint.npz``: model, optimizer, epoch, the loader's and the device's RNG state)
are written atomically. Ctrl-C finishes the current step, writes a checkpoint of exactly that
point and says how to resume (``gpugrad train --resume RUN_DIR``); on the CPU a resumed run ends
with the same weights as one never interrupted. A non-finite loss stops the run with the files kept.
"""
from __future__ import annotations

import dataclasses
import json
import math
import platform
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__, amp, capture, distributed, nn, optim
from .. import functional as F
from ..autograd import no_grad
from ..backend import CudaUnavailableError, get_backend
from ..creation import manual_seed, tensor
from ..ops.matmul import matmul_precision
from ..serialization import load, save
from ..utils import data as datasets
from .launch import STOP, launched, ready
from .runs import _clock, finite_history, prepare_output, summary, write_history, write_outputs, write_text

LOSSES = ("cross_entropy", "svm", "mse")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")  # adam is AdamW (its weight decay decoupled), as adamw
SCHEDULES = ("constant", "cosine")


class TrainingStopped(Exception):
    """The run stopped early with its files kept; ``exit_code`` is what the command returns."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class TrainConfig:
    dataset: str = "digits"
    data: str | None = None  # a file of the user's own: .npz (X, y) or .csv (with label), instead of dataset
    label: str | None = None  # the .csv's label column
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
    compile: bool = True  # the training step through gpugrad.compile (captured once, replayed)
    precision: str = "fp32"  # tf32 (GPU GEMMs), bf16 (autocast), fp16 (autocast and a GradScaler)
    nproc: int = 1  # data-parallel ranks (started by mpiexec; each takes batch_size samples per step)
    seed: int = 0
    out: str | None = None
    progress: bool | None = None  # None: a bar only when stderr is a terminal
    history: list = field(default_factory=list)

    def check(self):
        """Raise ValueError with a one-line reason for any bad setting."""
        if self.data is None and self.dataset not in datasets.DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r} (choose from {', '.join(datasets.DATASETS)})")
        if not self.hidden or any(int(h) <= 0 for h in self.hidden):
            raise ValueError(f"--hidden needs positive layer sizes such as 256,256, got {self.hidden}")
        if self.activation not in nn.layers.MLP_ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r} (choose from {', '.join(nn.layers.MLP_ACTIVATIONS)})")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r} (choose from {', '.join(LOSSES)})")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
        if self.precision not in amp.PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r} (choose from {', '.join(amp.PRECISIONS)})")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r} (choose constant or cosine)")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}")
        if not math.isfinite(self.momentum) or self.momentum < 0:
            raise ValueError(f"--momentum must be a finite number >= 0, got {self.momentum}")
        if isinstance(self.nproc, bool) or not isinstance(self.nproc, int) or self.nproc < 1:
            raise ValueError(f"--nproc must be an integer >= 1, got {self.nproc!r}")
        if self.epochs < 1 or self.batch_size < 1 or (self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0)):
            raise ValueError(f"--epochs and --batch-size must be >= 1 and --lr a finite number > 0 "
                             f"(got {self.epochs}, {self.batch_size}, {self.lr})")
        if self.dataset == "toy" and self.loss != "mse":
            raise ValueError("the toy data set is a regression: use --loss mse")

    def options(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()
                if k not in ("history", "progress")}


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
    return F.mse_loss(F.softmax(outputs), F.one_hot(labels, num_classes).astype(outputs.dtype))


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


class _StopRequest:
    """A Ctrl-C sets a flag that the loop reads after each step; a second one stops at once (KeyboardInterrupt).
    With several ranks (``comm``) the flags are put to a vote (``host_max``: 16 bytes on the host), so that every
    rank stops after the same step and none waits in an all-reduce for one that left: every ``every`` steps, and at
    each epoch's end. A vote also agrees on the next ``every`` (the most any rank proposes: the steps of about
    VOTE_S seconds on it). A vote costs about 4 us on 2 CPU cores: after every step that is 4% of a 0.1 ms step
    (the lecture's), one per VOTE_S is 0.01% of any; the ranks stop within about VOTE_S of a Ctrl-C
    (bench/stop_vote_cost.py: both within the noise for the 1.2 ms default step).
    A rank's Ctrl-C is a SIGINT (a user's own mpiexec forwards it) or its launcher's STOP (see launch.py)."""
    VOTE_S = 0.05

    def __init__(self, comm=None):
        self.requested = self.decided = False
        self.comm, self.every, self.steps, self.since = comm, 1, 0, time.perf_counter()
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            numbers = [signal.SIGINT] + ([STOP] if self.comm is not None and launched() else [])
            self._previous = {number: signal.signal(number, self._handle) for number in numbers}
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def agreed(self, step_end=True) -> bool:
        """Whether to stop here (after a step, or ``step_end=False`` at an epoch's end): this process was asked to,
        or (with ranks) a rank had been by the vote. Every rank makes the same calls in the same order."""
        if self.decided or self.comm is None:
            self.decided = self.decided or self.requested
            return self.decided
        self.steps += step_end
        if step_end and self.steps < self.every:
            return False
        now = time.perf_counter()
        proposal = max(1, min(10_000, int(self.VOTE_S * self.steps / max(now - self.since, 1e-9)))) if self.steps else 1
        flag, every = self.comm.host_max([int(self.requested), proposal])
        self.decided, self.every, self.steps, self.since = bool(flag), int(every), 0, now
        return self.decided

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        return False


def _versions(device):
    found = {"gpugrad": __version__, "numpy": np.__version__, "python": platform.python_version()}
    if device.startswith("cuda"):
        import cupy
        found["cupy"] = cupy.__version__
    return found


def _rng_state(backend):
    rng = getattr(backend, "rng", None)
    return json.dumps(rng.bit_generator.state) if isinstance(rng, np.random.Generator) else None


def check_resume(resume, epochs=None):
    """The run folder, its saved options and its checkpoint, or a ValueError saying why it cannot go on (also
    called before an --nproc run's ranks start, so that one process says it)."""
    out = prepare_output(Path(resume), resuming=True)
    saved = json.loads((out / "config.json").read_text())["options"]
    saved["hidden"] = tuple(saved["hidden"])
    checkpoint = load(out / "checkpoint.npz")
    if epochs is not None and epochs <= int(checkpoint["epoch"]) - 1:
        raise ValueError(f"--resume {out} --epochs {epochs}: the run has trained {int(checkpoint['epoch']) - 1} "
                         "epochs already; give more to extend it")
    if epochs is None and int(checkpoint["epoch"]) > saved["epochs"]:
        raise ValueError(f"--resume {out}: the run finished its {saved['epochs']} epochs; add --epochs M "
                         f"(M > {saved['epochs']}) to train it further")
    return out, saved, checkpoint


def train(config: TrainConfig, log=print, resume: str | None = None, epochs: int | None = None):
    """Train; return (model, history). With ``config.out`` (or ``resume``), writes config.json, then
    after every epoch history.json/.csv and checkpoint.npz, and at the end model.npz and loss.png. ``epochs``
    with ``resume``: train the run to that many epochs (a finished run is extended; fewer than done is refused)."""
    out = None
    checkpoint = None
    if resume is not None:
        out, saved, checkpoint = check_resume(resume, epochs)
        if epochs is not None and epochs != saved["epochs"]:
            saved["epochs"] = epochs
            whole = json.loads((out / "config.json").read_text())
            whole["options"]["epochs"] = epochs  # a later --resume goes on to the new end
            write_text(out / "config.json", json.dumps(whole, indent=2))
        config = TrainConfig(**{**saved, "progress": config.progress, "out": str(out)})
    config.check()
    comm = distributed.init(device=config.device) if config.nproc > 1 else None
    if comm is not None:
        ready(comm)
    if comm is not None and comm.size != config.nproc:
        raise ValueError(f"--nproc {config.nproc} but the launcher started {comm.size} process(es)")
    lead = comm is None or comm.rank == 0  # rank 0 alone prints, evaluates into the history and writes
    if not lead:
        log, out = (lambda *_: None), None
    device = resolve_device(config.device)
    if comm is not None and device.startswith("cuda"):
        device = f"cuda:{comm.local_rank}"
    data = datasets.from_file(config.data, config.label, seed=config.seed) if config.data else \
        datasets.load(config.dataset)
    if config.out and out is None and lead:
        out = prepare_output(Path(config.out), resuming=False)
    manual_seed(config.seed)
    num_classes = data.num_classes
    outputs = num_classes if num_classes is not None else data.y_train.shape[1]
    sizes = [data.num_features, *map(int, config.hidden), outputs]
    # Initialised on the CPU, then moved: the same seed gives the same weights on every device.
    model = nn.MLP(sizes, activation=config.activation).to(device)
    net = model if comm is None else nn.parallel.DistributedDataParallel(model, comm=comm)
    lr = config.lr if config.lr is not None else {"sgd": 0.1, "adagrad": 1e-2}.get(config.optimizer, 1e-3)
    if config.optimizer in ("adam", "adamw"):
        opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    elif config.optimizer == "rmsprop":
        opt = optim.RMSprop(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    elif config.optimizer == "adagrad":
        opt = optim.Adagrad(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    else:
        opt = optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs) if config.schedule == "cosine" else None
    loader = datasets.DataLoader(data.X_train, data.y_train, config.batch_size, shuffle=True, seed=config.seed,
                                 device=device, **({"rank": comm.rank, "world_size": comm.size} if comm else {}))
    X_test, y_test = tensor(data.X_test, device=device), tensor(data.y_test, device=device)
    history, first_epoch, skip_steps, partial = [], 1, 0, (0.0, 0)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        opt.load_state_dict(checkpoint["optimizer"])
        history = list(checkpoint["history"])
        first_epoch, skip_steps = checkpoint["epoch"], checkpoint["step"]
        partial = (checkpoint["partial_loss"], checkpoint["partial_seen"])
        loader.rng.bit_generator.state = json.loads(checkpoint["loader_rng"])
        if checkpoint["device_rng"] is not None and _rng_state(get_backend(device)) is not None:
            get_backend(device).rng.bit_generator.state = json.loads(checkpoint["device_rng"])
    elif out is not None:
        write_text(out / "config.json", json.dumps(
            {"options": config.options(), "layer_sizes": sizes, "device": device, "versions": _versions(device),
             "command": sys.argv}, indent=2))
    show_bar = sys.stderr.isatty() if config.progress is None else config.progress
    log(f"gpugrad train: {data.name} ({len(data.X_train)} train / {len(data.X_test)} test), "
        f"MLP {sizes} {config.activation}, {config.loss}, "
        f"{config.optimizer} lr={lr} ({config.schedule}) weight decay {config.weight_decay}, "
        f"precision {config.precision}, {comm.size if comm else 1} rank(s) x batch {config.batch_size} = global batch "
        f"{config.batch_size * (comm.size if comm else 1)}, {config.epochs} epochs, on {device}"
        + (f", resumed at epoch {first_epoch} step {skip_steps}" if checkpoint is not None else ""))

    def write_checkpoint(epoch, step, loader_rng, partial_loss, partial_seen):
        if out is None:
            return
        save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch, "step": step,
              "partial_loss": float(partial_loss), "partial_seen": int(partial_seen), "loader_rng": loader_rng,
              "device_rng": _rng_state(get_backend(device)), "scaler": scaler.state_dict(),
              "history": finite_history(history)}, out / "checkpoint.npz")
        write_history(out, history)

    low = amp.PRECISIONS[config.precision]
    scaler = amp.GradScaler(enabled=config.precision == "fp16")
    if checkpoint is not None and checkpoint.get("scaler"):
        scaler.load_state_dict(checkpoint["scaler"])

    def train_step(xb, yb):
        with amp.autocast(low or "bfloat16", enabled=low is not None):
            loss = _loss(config.loss, net(xb), yb, num_classes)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss
    def eagerly(error):  # the step is the library's: a capture that fails is the capture's fault, not the run's
        cause = str(error).strip().splitlines()[0] if str(error).strip() else ""
        log(f"gpugrad train: the step could not be captured ({type(error).__name__}: {cause[:200]}); "
            "running it eagerly from here on")
    step_once = capture.compile(train_step, enabled=config.compile, fallback=eagerly)

    run_started = time.perf_counter()
    # NOTE: numpy's overflow warnings are silenced: a non-finite loss is caught below, in one line.
    with _StopRequest(comm) as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
            matmul_precision("high" if config.precision == "tf32" else None):
        for epoch in range(first_epoch, config.epochs + 1):
            if schedule is not None:
                schedule.step(epoch - 1)  # from the epoch's number alone: a resumed run needs no schedule state
            bar = _progress(len(loader), show_bar, f"epoch {epoch}/{config.epochs}")
            started = time.perf_counter()
            loader_rng = json.dumps(loader.rng.bit_generator.state)  # before this epoch's permutation
            running, seen = [], 0
            step = 0
            for step, (xb, yb) in enumerate(loader, start=1):
                if step <= skip_steps:
                    continue
                loss = step_once(xb, yb)
                running.append((loss.clone() if config.compile else loss, len(xb)))  # a replay's loss is overwritten
                seen += len(xb)
                if bar is not None:
                    bar.update(1)
                if stop.agreed():
                    break
            # One device-to-host transfer per epoch, not per batch. A resumed epoch's first part is every rank's
            # already (summed when it was saved): counted once, on rank 0.
            total = (partial[0] if lead else 0.0) + sum(l.item() * n for l, n in running)
            seen_all = (partial[1] if lead else 0) + seen
            if comm is not None:  # every rank's shard: the epoch's loss over all of them
                total, seen_all = (float(v) for v in comm.all_reduce(np.array([total, seen_all], np.float64)))
            if bar is not None:
                bar.close()
            if stop.agreed(step_end=False) and step < len(loader):
                write_checkpoint(epoch, step, loader_rng, total, seen_all)
                raise TrainingStopped(
                    f"interrupted at epoch {epoch}, step {step} of {len(loader)}: checkpoint and history are in "
                    f"{out}; continue with: gpugrad train --resume {out}" if out is not None else
                    f"interrupted at epoch {epoch}, step {step} of {len(loader)} (no --out: nothing was written)", 130)
            skip_steps, partial = 0, (0.0, 0)
            get_backend(device).synchronize()
            elapsed = time.perf_counter() - started
            train_loss = total / max(seen_all, 1)
            test_loss, accuracy = _evaluate(model, X_test, y_test, config, num_classes)
            record = {"epoch": epoch, "train_loss": train_loss, "test_loss": test_loss, "test_accuracy": accuracy,
                      "samples_per_s": seen * (comm.size if comm else 1) / elapsed if elapsed > 0 else None}
            history.append(record)
            if not math.isfinite(train_loss):
                if out is not None:
                    write_history(out, history)  # the last checkpoint stays the last finite one
                raise TrainingStopped(
                    f"the training loss became {train_loss} in epoch {epoch}: lower the learning rate (--lr "
                    f"{opt.param_groups[0]['lr']:g} now) or check the data for NaN or inf"
                    + (f"; config and history (checkpoint: epoch {epoch - 1}) are in {out}" if out is not None and
                       epoch > 1 else f"; config and history are in {out}" if out is not None else ""), 3)
            write_checkpoint(epoch + 1, 0, json.dumps(loader.rng.bit_generator.state), 0.0, 0)
            acc = f", test accuracy {accuracy:.4f}" if accuracy is not None else ""
            spent = time.perf_counter() - run_started
            left = spent / (epoch - first_epoch + 1) * (config.epochs - epoch)
            log(f"epoch {epoch:3d}: train loss {train_loss:.4f}, test loss {test_loss:.4f}{acc}, "
                f"lr {opt.param_groups[0]['lr']:.3g}, {record['samples_per_s']:.0f} samples/s, "
                f"{_clock(spent)} elapsed, ETA {_clock(left)}")
            if stop.agreed(step_end=False):
                raise TrainingStopped(f"interrupted after epoch {epoch}: files are in {out}; continue with: "
                                      f"gpugrad train --resume {out}" if out is not None else
                                      f"interrupted after epoch {epoch}", 130)
    if out is not None:
        write_outputs(out, model, history, log)
    log(summary(history, time.perf_counter() - run_started, out))
    return model, history
