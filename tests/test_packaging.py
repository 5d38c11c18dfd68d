"""The wheel ships kernels/*.cu as gpugrad/kernels, and a non-editable install finds them; the C
extension is in the wheel where a compiler is found, and a wheel built without one works too."""
import os
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
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("gpugrad-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    sources = sorted(p.name for p in (ROOT / "kernels").glob("*.cu"))
    assert sources and all(f"gpugrad/kernels/{name}" in names for name in sources)
    assert "gpugrad/kernels/common.cuh" in names and "gpugrad/data/digits.npz" in names
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    assert any(n.startswith("gpugrad/_engine") and n.endswith((".so", ".pyd")) for n in names)
    probe = ("import gpugrad, gpugrad.backend as b, gpugrad.data as d, gpugrad.autograd as a; "
             "print(b.kernel_dir()); print(sorted(p.name for p in b.kernel_dir().glob('*.cu'))); "
             "print(gpugrad.__file__); print(len(d.digits().X_train)); print(a._engine.__file__)")
    out = _run_installed(probe, target, tmp_path)
    assert out.returncode == 0, out.stderr
    folder, listed, module, digits, engine = out.stdout.strip().splitlines()
    assert Path(folder).is_relative_to(target) and Path(module).is_relative_to(target)
    assert Path(engine).is_relative_to(target)
    assert listed == str(sources) and digits == "1438"


@pytest.mark.slow
def test_without_a_c_compiler_the_wheel_builds_and_runs_the_python_versions(tmp_path):
    pytest.importorskip("setuptools")
    import shutil
    # NOTE: a copy without build outputs: pip builds in the source tree, where an earlier build's
    # build/ folder (the test above) or an editable install's .so would end up in the wheel.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns("build", ".git", ".venv*", "*.so", "*.pyd",
                                                                "*.egg-info", "__pycache__", "runs", "dist"))
    env = dict(os.environ, CC="false", LDSHARED="false")  # every compile fails, as with no compiler
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300,
                           env=env)
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("gpugrad-*.whl"))
    assert not any(n.startswith("gpugrad/_engine") and n.endswith((".so", ".pyd")) for n in zipfile.ZipFile(wheel).namelist())
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    probe = ("import gpugrad, gpugrad.autograd as a; x = gpugrad.tensor([1.0, 2.0], requires_grad=True); "
             "(x * x).sum().backward(); print(a._engine, x.grad.numpy().tolist())")
    out = _run_installed(probe, target, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "[2.0,", "4.0]"]
