"""Starting N ranks: ``mpiexec -n N python -m gpugrad ...`` (``--nproc`` of train and bench)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys


def launch_ranks(nproc, argv) -> int:
    """``mpiexec -n N python -m gpugrad <argv>``: MPICH's launcher from the dist extra, else the system's;
    one BLAS thread per rank on the CPU (N ranks share the cores)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([mpiexec(), "-n", str(nproc), sys.executable, "-m", "gpugrad", *argv], env=env).returncode


def mpiexec() -> str:
    """The mpiexec beside this Python (the dist extra's MPICH), else the system's."""
    launcher = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if launcher is None:
        raise ImportError("--nproc needs mpiexec: pip install 'gpugrad[dist]' (mpi4py and MPICH)")
    return launcher
