"""`gpugrad train` keeps its work: real processes, real signals, real files."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import gpugrad
from gpugrad.app.runs import new_run_folder

RUN = [sys.executable, "-m", "gpugrad", "train", "--device", "cpu"]
# Small steps (batch 4: 360 per epoch) so that a signal lands mid-epoch.
SLOW = ["--hidden", "64", "--batch-size", "4", "--epochs", "6", "--seed", "1"]


def _weights(folder):
    return gpugrad.load(folder / "model.npz")


def test_sigint_saves_the_step_and_resume_ends_with_the_same_weights(tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    done = subprocess.run(RUN + SLOW + ["--out", str(straight)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    process = subprocess.Popen(RUN + SLOW + ["--out", str(interrupted)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (interrupted / "history.json").exists() and time.time() < deadline:  # one epoch done
        time.sleep(0.02)
    time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"continue with: gpugrad train --resume {interrupted}" in err
    checkpoint = gpugrad.load(interrupted / "checkpoint.npz")
    assert checkpoint["epoch"] >= 2 and not (interrupted / "model.npz").exists()
    resumed = subprocess.run(RUN[:-2] + ["--resume", str(interrupted)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at epoch" in resumed.stdout
    a, b = _weights(straight), _weights(interrupted)
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
    history = json.loads((interrupted / "history.json").read_text())
    assert [r["epoch"] for r in history] == list(range(1, 7))
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in json.loads((straight / "history.json").read_text())]


def test_config_history_and_checkpoint_are_written_as_the_run_goes(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(RUN + ["--hidden", "16", "--epochs", "2", "--out", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["hidden"] == [16] and config["layer_sizes"] == [64, 16, 10]
    assert config["device"] == "cpu" and config["versions"]["numpy"] == np.__version__
    assert {"seed", "lr", "optimizer", "epochs", "batch_size"} <= set(config["options"])
    checkpoint = gpugrad.load(out / "checkpoint.npz")
    assert checkpoint["epoch"] == 3 and checkpoint["step"] == 0 and "optimizer" in checkpoint
    again = subprocess.run(RUN + ["--out", str(out)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and f"holds a run already: continue it with --resume {out}" in again.stderr


def test_a_non_finite_loss_stops_the_run_keeping_valid_files(tmp_path):
    out = tmp_path / "nan"
    done = subprocess.run(RUN + ["--hidden", "16", "--optimizer", "sgd", "--lr", "1e30", "--epochs", "5", "--out",
                                 str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert "training loss became nan in epoch 1" in done.stderr and "lower the learning rate" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    history = json.loads((out / "history.json").read_text())  # valid JSON: NaN written as null
    assert history[-1]["epoch"] == 1 and history[-1]["train_loss"] is None
    assert (out / "history.csv").read_text().splitlines()[1].startswith("1,,")


@pytest.mark.parametrize("out", ["/proc/x/run", "FILE"])
def test_an_unwritable_output_folder_fails_before_any_training(tmp_path, out):
    if out == "FILE":
        out = tmp_path / "a_file"
        out.write_text("")
    started = time.time()
    done = subprocess.run(RUN + ["--epochs", "200", "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "output folder" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "epoch" not in done.stdout and time.time() - started < 30


def test_out_of_memory_and_a_closed_pipe_are_one_line_each(tmp_path):
    done = subprocess.run(RUN + ["--hidden", "100000000", "--out", str(tmp_path / "big")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith("gpugrad train: out of memory")
    assert len(done.stderr.strip().splitlines()) == 1
    piped = subprocess.run(" ".join(RUN + ["--hidden", "16", "--epochs", "30", "--out", str(tmp_path / "pipe")])
                           + " | head -1", shell=True, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in piped.stderr and len(piped.stderr.strip().splitlines()) <= 1
    assert (tmp_path / "pipe" / "config.json").exists()


def test_run_folders_started_in_the_same_second_never_collide(tmp_path):
    folders = {new_run_folder(tmp_path) for _ in range(5)}
    assert len(folders) == 5 and all(f.is_dir() for f in folders)


def test_lr_nan_is_refused_before_training(tmp_path):
    done = subprocess.run(RUN + ["--lr", "nan", "--out", str(tmp_path / "x")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--lr a finite number > 0" in done.stderr
    assert not (tmp_path / "x").exists()


def test_resume_of_a_folder_that_is_no_run_says_so(tmp_path):
    done = subprocess.run(RUN[:-2] + ["--resume", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a run folder with config.json and checkpoint.npz" in done.stderr
    assert os.listdir(tmp_path) == []


def test_a_finished_run_is_extended_with_epochs_or_refused_saying_so(tmp_path):
    out = tmp_path / "run"

    def train(*args):
        return subprocess.run([sys.executable, "-m", "gpugrad", "train", *args], capture_output=True, text=True,
                              timeout=300)
    assert train("--epochs", "2", "--out", str(out)).returncode == 0
    refused = train("--resume", str(out))
    assert refused.returncode == 2 and "finished its 2 epochs; add --epochs M" in refused.stderr
    fewer = train("--resume", str(out), "--epochs", "2")
    assert fewer.returncode == 2 and "has trained 2 epochs already" in fewer.stderr
    extended = train("--resume", str(out), "--epochs", "4")
    assert extended.returncode == 0, extended.stderr[-2000:]
    assert [r["epoch"] for r in json.loads((out / "history.json").read_text())] == [1, 2, 3, 4]
    assert json.loads((out / "config.json").read_text())["options"]["epochs"] == 4  # a later --resume goes on to 4



@pytest.mark.parametrize("saved", [True, False])
def test_a_second_ctrl_c_or_one_before_the_steps_prints_one_line_not_a_traceback(tmp_path, monkeypatch, capsys, saved):
    """The first Ctrl-C is the loop's (above); one that raises (a second, or one before the first step) ends the
    command with one line saying what is kept, status 130."""
    from gpugrad.app import cli
    out = tmp_path / "run"

    def interrupted(config, **_):
        out.mkdir()
        if saved:
            (out / "checkpoint.npz").write_bytes(b"")
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "train", interrupted)
    assert cli.main(["train", "--device", "cpu", "--out", str(out)]) == 130
    assert capsys.readouterr().err.splitlines() == ["gpugrad train: interrupted at once; " + (
        f"the last checkpoint is kept: continue with gpugrad train --resume {out}" if saved else
        "before its first checkpoint")]

    def bench(args):
        print("a row")
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "run_bench", bench)
    assert cli.main(["bench"]) == 130
    assert capsys.readouterr() == ("a row\n", "gpugrad bench: interrupted\n")
