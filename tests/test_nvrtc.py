"""Every kernel compiles as CuPy will compile it on a card: NVRTC with CuPy's added options (-ftz=true, the
architecture, --device-as-default-execution-space) and gpugrad's defines, every name expression gpugrad asks for,
with and without half precision, for sm_80 and sm_90 (tests/nvrtc_compile.py, run by the Python of the real CuPy's
environment, which .ci/run gives cuda-bindings and nvidia-cuda-nvrtc). nvcc's PTX check (test_launch_signatures)
does not see NVRTC's built-in headers or CuPy's options. -ftz=true is pinned: float32 arithmetic flushes subnormals
on a GPU, so CPU-GPU parity "to the ulp" holds for normal numbers only (gpugrad/cuda/kernels.py says so)."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = os.environ.get("GPUGRAD_REAL_CUPY_PYTHON")


@pytest.mark.skipif(not REAL and not os.environ.get("CI"),
                    reason="set GPUGRAD_REAL_CUPY_PYTHON to a Python with cupy-cuda13x, cuda-bindings, "
                           "nvidia-cuda-nvrtc and ml_dtypes (.ci/run makes one)")
def test_every_kernel_compiles_with_nvrtc_as_cupy_compiles_it():
    assert REAL, "CI must set GPUGRAD_REAL_CUPY_PYTHON (see .ci/run)"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([REAL, "-P", str(ROOT / "tests" / "nvrtc_compile.py")], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["failures"] == []
    assert report["refuses"], "NVRTC accepted a name expression the source lacks: the check cannot fail"
    assert report["expressions"] >= 80, "bfloat16 kernels missing: the environment needs ml_dtypes"
    assert report["compiled"] > 2 * report["expressions"]  # each with and without half, for two architectures
    assert report["ftz"], "CuPy's -ftz=true no longer flushes float32 subnormals: revisit the parity claim"
