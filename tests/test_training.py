"""Data sets, DataLoader, checkpoints, and the `gpugrad train` / `gpugrad info` commands end to end."""
import json
import subprocess
import sys

import numpy as np
import pytest

import gpugrad
from gpugrad import nn
from gpugrad.utils import data
from gpugrad.app.cli import main
from gpugrad.app.train import TrainConfig, train


def test_digits_ships_with_the_package():
    d = data.digits()
    assert d.X_train.shape == (1438, 64) and d.X_test.shape == (359, 64)
    assert d.X_train.dtype == np.float32 and 0 <= d.X_train.min() and d.X_train.max() <= 1
    assert set(np.unique(d.y_train)) == set(range(10))


def test_synthetic_toy_and_unknown_datasets():
    s = data.synthetic(n_samples=100, n_features=5, num_classes=3, seed=1)
    assert s.X_train.shape[1] == 5 and s.num_classes == 3
    assert np.array_equal(data.synthetic(n_samples=100, n_features=5, seed=1).X_test,
                          data.synthetic(n_samples=100, n_features=5, seed=1).X_test)
    t = data.toy()
    assert t.X_train.tolist() == [[1, 2, 3], [3, 2, 1], [1, 5, 7]] and t.y_train.tolist() == [[4, 5], [5, 6], [8, 6]]
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        data.load("cifar")


def test_mnist1d_is_generated_locally_or_says_how():
    import importlib.util
    if importlib.util.find_spec("mnist1d") is None:
        with pytest.raises(ImportError, match="pip install mnist1d"):
            data.mnist1d()
        return
    d = data.mnist1d()
    assert d.X_train.shape == (4000, 40) and d.X_test.shape == (1000, 40)


def test_dataloader_batches_cover_each_epoch_once(device):
    X = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10)
    loader = data.DataLoader(X, y, batch_size=4, seed=0, device=device)
    assert len(loader) == 3
    seen = np.concatenate([yb.numpy() for _, yb in loader])
    assert sorted(seen.tolist()) == list(range(10))
    first, second = [yb.numpy().tolist() for _, yb in loader], [yb.numpy().tolist() for _, yb in loader]
    assert first != second, "a fresh permutation each epoch"
    batches = list(data.DataLoader(X, y, batch_size=4, shuffle=False, drop_last=True, device=device))
    assert len(batches) == 2 and batches[0][1].numpy().tolist() == [0, 1, 2, 3]
    assert batches[0][0].device.startswith(device)
    with pytest.raises(ValueError, match="X has 10 samples but y has 9"):
        data.DataLoader(X, y[:9], batch_size=2)


def test_save_and_load_round_trip(tmp_path):
    model = nn.MLP([3, 4, 2])
    gpugrad.save({"model": model.state_dict(), "epoch": 7, "note": "x", "pair": (1, 2.5)}, tmp_path / "ck.npz")
    loaded = gpugrad.load(tmp_path / "ck.npz")
    assert loaded["epoch"] == 7 and loaded["note"] == "x" and loaded["pair"] == (1, 2.5)
    fresh = nn.MLP([3, 4, 2])
    fresh.load_state_dict(loaded["model"])
    for p, q in zip(model.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as archive:  # nothing pickled
        assert all(name.startswith("a") or name == "__gpugrad_structure__" for name in archive.files)
    with pytest.raises(TypeError, match=r"cannot store a object at \['bad'\]"):
        gpugrad.save({"bad": object()}, tmp_path / "bad.npz")


def test_state_dict_loads_into_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    model = nn.MLP([5, 7, 3], activation="relu")
    gpugrad.save(model.state_dict(), tmp_path / "m.npz")
    state = gpugrad.load(tmp_path / "m.npz")
    reference = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    reference.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in state.items()})
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(reference(torch.from_numpy(x)).detach().numpy(), model(gpugrad.tensor(x)).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_train_is_deterministic_and_learns():
    config = dict(dataset="digits", hidden=(32,), epochs=3, batch_size=128, device="cpu", seed=3, progress=False)
    _, first = train(TrainConfig(**config), log=lambda *_: None)
    _, second = train(TrainConfig(**config), log=lambda *_: None)
    assert [r["train_loss"] for r in first] == [r["train_loss"] for r in second]
    assert first[-1]["train_loss"] < first[0]["train_loss"]
    assert set(first[0]) == {"epoch", "train_loss", "test_loss", "test_accuracy", "samples_per_s"}


@pytest.mark.parametrize("loss,optimizer", [("svm", "sgd"), ("mse", "adam")])
def test_train_other_losses_and_optimizers(loss, optimizer):
    _, history = train(TrainConfig(hidden=(32,), epochs=4, loss=loss, optimizer=optimizer, device="cpu",
                                   progress=False), log=lambda *_: None)
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["test_accuracy"] > 0.3


def test_train_toy_regression():
    _, history = train(TrainConfig(dataset="toy", hidden=(4, 4), activation="sigmoid", loss="mse", epochs=200,
                                   batch_size=3, lr=0.05, device="cpu", progress=False), log=lambda *_: None)
    assert history[-1]["test_accuracy"] is None and history[-1]["train_loss"] < history[0]["train_loss"]


def test_cli_train_writes_its_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--hidden", "16", "--epochs", "2", "--device", "cpu", "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert (out / "history.csv").read_text().splitlines()[0] == "epoch,train_loss,test_loss,test_accuracy,samples_per_s"
    assert gpugrad.load(out / "model.npz")["0.weight"].shape == (16, 64)
    printed = capsys.readouterr().out
    assert "epoch   2: train loss" in printed and "test accuracy" in printed


@pytest.mark.parametrize("args,message", [
    (["--dataset", "cifar"], "unknown data set 'cifar'"),
    (["--hidden", "0,3"], "layer sizes must be positive"),
    (["--hidden", "a"], "expected comma-separated layer sizes"),
    (["--loss", "hinge"], "unknown loss 'hinge'"),
    (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    (["--epochs", "0"], "--epochs and --batch-size must be >= 1"),
    (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
    (["--lr", "nan"], "--lr a finite number > 0"),
    (["--schedule", "step"], "unknown schedule 'step'"),
    (["--device", "tpu"], "unknown device 'tpu'"),
])
def test_cli_train_rejects_bad_arguments(args, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "gpugrad", "train", "--out", str(tmp_path / "x"), *args],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_train_cuda_unavailable_is_one_line(tmp_path):
    from conftest import CUDA_SKIP
    if not CUDA_SKIP:
        pytest.skip("a GPU is usable here")
    result = subprocess.run([sys.executable, "-m", "gpugrad", "train", "--device", "cuda", "--out", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "cuda" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "gpugrad 0.1.0" in out and "numpy" in out and "BLAS" in out


@pytest.mark.gpu
def test_train_on_the_gpu_matches_the_cpu_curve(cuda):
    config = dict(hidden=(64,), epochs=3, batch_size=64, seed=1, progress=False)
    _, cpu = train(TrainConfig(device="cpu", **config), log=lambda *_: None)
    _, gpu = train(TrainConfig(device=cuda, **config), log=lambda *_: None)
    np.testing.assert_allclose([r["train_loss"] for r in gpu], [r["train_loss"] for r in cpu], rtol=1e-4)


def test_the_default_command_reaches_97_percent_on_digits():
    _, history = train(TrainConfig(device="cpu", progress=False), log=lambda *_: None)
    assert history[-1]["test_accuracy"] >= 0.97


def test_train_on_your_own_npz_and_csv_with_a_stratified_split(tmp_path):
    import csv
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 1)
    np.savez(tmp_path / "own.npz", X=X, y=y)
    with open(tmp_path / "own.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["a", "kind", "b", "c", "d"])
        for row, label in zip(X, y):
            writer.writerow([row[0], ["ant", "bee", "cat", "dog"][label], *row[1:]])
    own = data.from_file(tmp_path / "own.npz")
    counts = np.bincount(y)
    assert np.bincount(own.y_test).tolist() == [int(round(c * 0.2)) for c in counts]  # stratified
    assert len(own.X_train) + len(own.X_test) == 200 and own.num_classes == 4
    from_csv = data.from_file(tmp_path / "own.csv", label="kind")
    assert from_csv.num_features == 4 and from_csv.num_classes == 4
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "own.csv"), "--label", "kind", "--epochs", "2", "--hidden", "8",
                 "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["options"]["data"] == str(tmp_path / "own.csv")
    for bad, message in ((["--data", str(tmp_path / "own.csv")], "name the label column with --label"),
                         (["--data", str(tmp_path / "none.npz")], "no such file")):
        done = subprocess.run([sys.executable, "-m", "gpugrad", "train", *bad, "--out", str(tmp_path / "x")],
                              capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr and not (tmp_path / "x").exists()


def test_epoch_lines_show_lr_elapsed_and_eta_and_a_summary_ends_the_run(tmp_path, capsys):
    assert main(["train", "--hidden", "8", "--epochs", "2", "--device", "cpu", "--out", str(tmp_path / "r")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert ", lr 0.001, " in printed[1] and " elapsed, ETA " in printed[1]
    assert printed[-1].startswith("done in ") and "best epoch" in printed[-1] and str(tmp_path / "r") in printed[-1]


def test_bench_loss_difference_is_each_rows_own(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "b.json"
    assert main(["bench", "--quick", "--device", "cpu", "--model", "lecture", "--rounds", "1", "--json", str(out)]) == 0
    rows = {r["impl"]: r["max_rel_loss_diff_vs_numpy"] for r in json.loads(out.read_text())["results"]}
    assert rows["numpy"] == 0.0 and set(rows) == {"gpugrad", "written", "numpy", "torch"}
    assert all(v < 1e-5 for v in rows.values())


def test_the_cli_offers_every_activation_and_optimizer_and_names_the_run_on_its_first_line(tmp_path):
    """gelu, silu, adamw, rmsprop and adagrad from the command line; the first line names the precision, the ranks
    and the global batch."""
    for option, value in (("--activation", "gelu"), ("--activation", "silu"), ("--optimizer", "adamw"),
                          ("--optimizer", "rmsprop"), ("--optimizer", "adagrad")):
        done = subprocess.run([sys.executable, "-m", "gpugrad", "train", option, value, "--epochs", "1", "--out",
                               str(tmp_path / value)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        first = done.stdout.splitlines()[0]
        assert value in first and "precision fp32, 1 rank(s) x batch 64 = global batch 64" in first, first
