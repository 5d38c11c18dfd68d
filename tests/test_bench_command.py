"""`gpugrad bench` in a tiny --quick configuration, and its argument checks."""
import json
import subprocess
import sys

import numpy as np

from gpugrad.app.benchmark import MODELS, numpy_step, step_flops

FIELDS = {"model", "sizes", "batch", "device", "impl", "activation", "dtype", "median_ms", "samples_per_s", "gflops",
          "pct_of_matmul_ceiling", "ratio_to_numpy", "ratio_to_torch", "rounds_ms", "matmul_ceiling_gflops",
          "max_rel_loss_diff_vs_numpy", "statistic", "round_means_ms", "ratio_to_numpy_of_round_means"}


def test_bench_quick_writes_json_with_every_field(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "gpugrad", "bench", "--quick", "--device", "cpu", "--model", "lecture",
                             "--rounds", "1", "--compile", "--json", str(out)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "median ms" in result.stdout
    rows = json.loads(out.read_text())["results"]
    impls = {r["impl"] for r in rows}
    assert {"gpugrad", "compiled", "numpy"} <= impls
    for row in rows:
        assert FIELDS <= set(row), FIELDS - set(row)
        assert row["median_ms"] > 0 and row["samples_per_s"] > 0
        assert row["max_rel_loss_diff_vs_numpy"] < 1e-4  # the same function, computed two ways
    numpy_row = next(r for r in rows if r["impl"] == "numpy")
    assert numpy_row["ratio_to_numpy"] == 1.0 and numpy_row["statistic"] == "median step of each round"
    for row in rows:  # the median of a round's steps is at most their mean plus timer noise
        assert all(m <= mean * 1.05 for m, mean in zip(row["rounds_ms"], row["round_means_ms"]))


def test_bench_rejects_bad_arguments():
    for args, message in ((["--model", "resnet"], "unknown model 'resnet'"),
                          (["--device", "tpu"], "unknown device 'tpu'"),
                          (["--dtype", "int8"], "invalid choice: 'int8'")):
        result = subprocess.run([sys.executable, "-m", "gpugrad", "bench", *args], capture_output=True, text=True)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_numpy_reference_step_matches_gpugrad_gradients():
    from gpugrad.app.benchmark import _data, _init, gpugrad_setup
    sizes, batch, biases, loss = MODELS["mlp"]
    sizes, batch = [20, 16, 12, 5], 8
    for activation in ("sigmoid", "relu"):
        state = _init(sizes, biases, np.float64)
        x, y = _data(sizes, batch, loss, np.float64)
        losses_numpy = [numpy_step(state, x, y, activation, loss, 0.1) for _ in range(3)]
        step, _ = gpugrad_setup(sizes, batch, biases, loss, activation, np.float64, "cpu", 0.1)
        losses_gpugrad = [step().item() for _ in range(3)]
        np.testing.assert_allclose(losses_gpugrad, losses_numpy, rtol=1e-12)


def test_step_flops_counts_forward_and_both_gradients():
    assert step_flops([10, 20, 5], 4) == 2 * (2 * 4 * (10 * 20 + 20 * 5)) + 2 * 4 * 20 * 5


def test_bench_plot_writes_a_png_or_says_why(tmp_path):
    import importlib.util
    plot = tmp_path / "bench.png"
    result = subprocess.run([sys.executable, "-m", "gpugrad", "bench", "--quick", "--device", "cpu", "--model", "lecture",
                             "--rounds", "1", "--plot", str(plot)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    if importlib.util.find_spec("matplotlib") is None:
        assert "no plot: matplotlib is not installed" in result.stdout and not plot.exists()
    else:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_candidates_share_their_arrays_inside_shared_arrays_and_only_there():
    from gpugrad.app.benchmark import _init, gpugrad_setup, numpy_setup, shared_arrays, written_setup
    net = ([6, 5, 3], 4, False, "sse", "sigmoid", np.float32)
    with shared_arrays():
        steps = [numpy_setup(*net, 1e-2)[0], gpugrad_setup(*net, "cpu", 1e-2)[0], written_setup(*net, "cpu", 1e-2)[0]]
        w1 = _init(net[0], False, np.float32)[0][0]
    address, start = w1.ctypes.data, w1.copy()
    changes = []
    for step in steps:  # each candidate's update lands in the one array, in place
        before = w1.copy()
        step()
        changes.append(float(np.abs(w1 - before).max()))
    assert w1.ctypes.data == address and min(changes) > 0, changes
    alone = _init(net[0], False, np.float32)[0][0]  # outside: a fresh copy, the same values as at the start
    assert not np.shares_memory(alone, w1) and np.array_equal(alone, start)
