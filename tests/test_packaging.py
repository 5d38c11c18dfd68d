"""The wheel ships kernels/*.cu as gpugrad/kernels, and a non-editable install finds them."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_installed(code, target, cwd):
    """Python on the installed copy alone: -S keeps out site-packages (where an editable install's
    import hook would serve gpugrad's modules from the source tree); numpy's folder comes back by path."""
    numpy_site = Path(np.__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": f"{target}{os.pathsep}{numpy_site}", "PATH": "/usr/bin:/bin"},
                          timeout=120)


@pytest.mark.slow
def test_wheel_ships_the_kernels_and_an_installed_copy_finds_them(tmp_path):
    pytest.importorskip("setuptools")
    # built from a copy of the sources: setuptools keeps a build/ folder beside them, whose stale files (a module
    # since moved) would otherwise travel into the wheel
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "runs", "*.egg-info",
                                                                "__pycache__", ".hypothesis", ".benchmarks", "bench"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("gpugrad-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    sources = sorted(p.name for p in (ROOT / "kernels").glob("*.cu"))
    assert sources and all(f"gpugrad/kernels/{name}" in names for name in sources)
    assert "gpugrad/kernels/common.cuh" in names and "gpugrad/utils/data/digits.npz" in names
    source_modules = {str(p.relative_to(ROOT)) for p in (ROOT / "gpugrad").rglob("*.py")} | {
        f"gpugrad/kernels/{p.name}" for p in (ROOT / "kernels").glob("*.py")}  # nothing stale, nothing left out
    shipped = {n for n in names if n.startswith("gpugrad/") and n.endswith(".py")}
    assert shipped == source_modules, (sorted(source_modules - shipped), sorted(shipped - source_modules))
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    probe = ("import gpugrad, gpugrad.cuda.sources as b, gpugrad.utils.data as d; "
             "print(b.kernel_dir()); print(sorted(p.name for p in b.kernel_dir().glob('*.cu'))); "
             "print(gpugrad.__file__); print(len(d.digits().X_train))")
    out = _run_installed(probe, target, tmp_path)
    assert out.returncode == 0, out.stderr
    folder, listed, module, digits = out.stdout.strip().splitlines()
    assert Path(folder).is_relative_to(target) and Path(module).is_relative_to(target)
    assert listed == str(sources) and digits == "1438"
    # every package of the wheel imports (CuPy-only modules aside), and a tiny training step runs on the installed copy
    packages = sorted({n.rpartition("/")[0].replace("/", ".") for n in names if n.endswith("/__init__.py")})
    assert "gpugrad.app" in packages and "gpugrad.utils.data" in packages, packages
    needs_cupy = {"gpugrad.backend.cupy_backend", "gpugrad.capture.cuda", "gpugrad.cuda.kernels", "gpugrad.distributed.nccl"}
    modules = [n[:-3].replace("/", ".") for n in names if n.endswith(".py") and not n.endswith("__init__.py")]
    step = ("import importlib; [importlib.import_module(m) for m in %r]; "
            "import gpugrad, gpugrad.nn as nn, gpugrad.optim as optim, gpugrad.nn.functional as F; "
            "from gpugrad.utils.data import DataLoader, digits; d = digits(); gpugrad.manual_seed(0); "
            "model = nn.MLP([64, 32, 10]); opt = optim.SGD(model.parameters(), lr=0.1); "
            "xb, yb = next(iter(DataLoader(d.X_train, d.y_train, batch_size=64, seed=0))); "
            "losses = []\nfor _ in range(5):\n    opt.zero_grad(); loss = F.cross_entropy(model(xb), yb); "
            "loss.backward(); opt.step(); losses.append(loss.item())\nprint(losses[0] > losses[-1])"
            % (packages + [m for m in modules if m not in needs_cupy and m != "gpugrad.__main__"]))
    out = _run_installed(step, target, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True", out.stdout

