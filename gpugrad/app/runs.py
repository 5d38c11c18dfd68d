"""A training run's folder: made and checked before any work, never shared, written atomically as the
run goes (config, history, checkpoint), and the closing summary and loss plot."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from pathlib import Path

from ..serialization import save, write_atomically


def new_run_folder(parent="runs") -> Path:
    """``runs/<timestamp>``, with ``-2``, ``-3``, ... when a run started in the same second holds it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 10_000):
        folder = Path(parent) / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise OSError(f"no free run folder under {parent} for {stamp}")


def prepare_output(out: Path, resuming: bool) -> Path:
    """Make the output folder (or check a resumed one) and prove it writable, before any work."""
    out = Path(out)
    if resuming:
        if not (out / "config.json").is_file() or not (out / "checkpoint.npz").is_file():
            raise ValueError(f"--resume {out}: not a run folder with config.json and checkpoint.npz")
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ValueError(f"output folder {out}: a file is in the way") from None
        except OSError as error:
            raise ValueError(f"output folder {out}: cannot create it ({error.strerror})") from None
        if (out / "config.json").exists():
            raise ValueError(f"output folder {out} holds a run already: continue it with --resume {out}, "
                             "or give another --out")
    probe = out / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"output folder {out} is not writable ({error.strerror})") from None
    return out


def finite_history(history) -> list:
    """The history with every non-finite number as None (JSON's null, an empty CSV field)."""
    return [{k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in r.items()} for r in history]


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda f: f.write(text.encode()), "gpugrad train")


def write_history(out: Path, history) -> None:
    """history.json (valid JSON: a non-finite number is null) and history.csv (empty field), atomically."""
    rows = finite_history(history)
    write_text(out / "history.json", json.dumps(rows, indent=2, allow_nan=False))
    buffer = io.StringIO()
    fields = ["epoch", "train_loss", "test_loss", "test_accuracy", "samples_per_s"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "history.csv", buffer.getvalue())


def _clock(seconds) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def summary(history, seconds, out) -> str:
    """One line at the end: the best epoch (by test accuracy, else test loss), its figures, the time, the files."""
    scored = [r for r in history if r["test_accuracy"] is not None]
    best = max(scored, key=lambda r: r["test_accuracy"]) if scored else min(history, key=lambda r: r["test_loss"])
    figure = f"test accuracy {best['test_accuracy']:.4f}" if scored else f"test loss {best['test_loss']:.4f}"
    last = history[-1]
    final = f"; final epoch {last['epoch']}: test accuracy {last['test_accuracy']:.4f}" if scored else ""
    where = f"; files in {out}" if out is not None else ""
    return f"done in {_clock(seconds)}: best epoch {best['epoch']} ({figure}){final}{where}"


def write_outputs(out: Path, model, history, log=print):
    write_history(out, history)
    save(model.state_dict(), out / "model.npz")
    written = ["config.json", "history.json", "history.csv", "checkpoint.npz", "model.npz"]
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
        lines = ax.get_lines()
        if history[0]["test_accuracy"] is not None:
            twin = ax.twinx()
            lines += twin.plot(epochs, [r["test_accuracy"] for r in history], color="tab:green", label="test accuracy")
            twin.set_ylabel("test accuracy")
        # NOTE: one legend for both axes, above the plot, where it covers no line
        ax.legend(lines, [line.get_label() for line in lines], loc="lower center", bbox_to_anchor=(0.5, 1.0),
                  ncol=len(lines), frameon=False)
        fig.tight_layout()
        fig.savefig(out / "loss.png", dpi=100)
        plt.close(fig)
        written.append("loss.png")
    except ImportError:
        pass
    log(f"wrote {', '.join(written)} to {out}")
