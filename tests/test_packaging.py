"""The wheel ships kernels/*.cu as gpugrad/kernels, and a non-editable install finds them."""
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
    probe = ("import gpugrad, gpugrad.backend as b, gpugrad.data as d; "
             "print(b.kernel_dir()); print(sorted(p.name for p in b.kernel_dir().glob('*.cu'))); "
             "print(gpugrad.__file__); print(len(d.digits().X_train))")
    out = _run_installed(probe, target, tmp_path)
    assert out.returncode == 0, out.stderr
    folder, listed, module, digits = out.stdout.strip().splitlines()
    assert Path(folder).is_relative_to(target) and Path(module).is_relative_to(target)
    assert listed == str(sources) and digits == "1438"
